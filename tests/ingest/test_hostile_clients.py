"""The ingest under hostile clients (issue 13, server mode): silent sockets crowding the gate,
deeply nested AMF0, and a local process racing the gate for ffmpeg's input. Real ffmpeg
pushers play the egress."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ingest.conftest import SHORT_CLIP_SECONDS, Collector, Pusher, nested_connect
from transcription.live.ingest import PortPool, RtmpIngest
from transcription.live.ingest.chunks import AMF0_COMMAND, AMF0_DATA, AUDIO
from transcription.live.ingest.gate import (
    HANDSHAKE_SIZE,
    amf0_encode,
    client_handshake,
    encode_message,
)
from transcription.live.ingest.rtmp import MAX_PENDING_PER_ADDRESS

SILENT = 12
"""Silent connections held open: more than the 8 pending handshakes that used to lock the egress
out, fewer than ``MAX_PENDING_PER_ADDRESS``, so the publisher passes without displacing any."""
HEARD = SHORT_CLIP_SECONDS - 0.4
"""Audio of one short push that surely comes out (AAC priming and the tail may be trimmed)."""


class SilentSockets:
    """``count`` TCP connections to ``port`` that never send a byte, each reopened as soon as
    the gate closes it when ``reopen`` (the attack: it made the egress "busy" 17 times)."""

    def __init__(self, port: int, count: int, *, reopen: bool) -> None:
        self.port = port
        self.count = count
        self.reopen = reopen
        self.closed: list[int] = []
        """Indexes of the connections the gate closed, in order (open order is index order)."""
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for index in range(self.count):
            opened = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._hold(index, opened)))
            await opened.wait()

    async def _hold(self, index: int, opened: asyncio.Event) -> None:
        while True:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            opened.set()
            with contextlib.suppress(ConnectionError):
                await reader.read()  # the gate aborts: a reset, or an orderly end
            writer.close()
            self.closed.append(index)
            if not self.reopen:
                return
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _push(pushers: list[Pusher], flv: Path, url: str) -> Pusher:
    pusher = await Pusher(flv, url).start()
    pushers.append(pusher)
    return pusher


async def _until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_silent_sockets_held_open_and_reopened_do_not_starve_the_publisher(
    ingest: RtmpIngest, short_flv: Path, pushers: list[Pusher]
) -> None:
    assert ingest.port is not None
    silent = SilentSockets(ingest.port, SILENT, reopen=True)
    await silent.start()
    await asyncio.sleep(0.2)  # the gate has accepted them all
    collector = Collector(ingest)
    try:
        for attempt in range(1, 4):  # each push ends; the egress comes back to a new ffmpeg
            pusher = await _push(pushers, short_flv, ingest.url())
            code = await pusher.wait(timeout=SHORT_CLIP_SECONDS + 10)
            assert code == 0, f"push {attempt} was refused while {SILENT} silent sockets waited"
            assert ingest.publishers == attempt
            await collector.until(attempt * HEARD, timeout=5)
        # Timed out by the gate and reopened at once, all along.
        assert len(silent.closed) >= SILENT, silent.closed
    finally:
        await silent.stop()


@pytest.mark.asyncio
async def test_at_the_address_cap_the_publisher_displaces_the_oldest_silent_socket(
    pool: PortPool, short_flv: Path, pushers: list[Pusher], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="transcription.live.ingest.rtmp")
    ingest = RtmpIngest(
        stream_key="run-secret-6", ports=pool, hello_timeout=30, handshake_timeout=30
    )  # nobody times out: whoever leaves was dropped
    async with ingest:
        assert ingest.port is not None
        silent = SilentSockets(ingest.port, MAX_PENDING_PER_ADDRESS, reopen=False)
        await silent.start()
        try:
            await _until(lambda: ingest.pending == MAX_PENDING_PER_ADDRESS, "the silent sockets")
            collector = Collector(ingest)
            pusher = await _push(pushers, short_flv, ingest.url())
            assert await pusher.wait(timeout=SHORT_CLIP_SECONDS + 10) == 0
            await collector.until(HEARD, timeout=5)
            assert silent.closed == [0], "only the oldest silent socket made room"
            assert ingest.pending == MAX_PENDING_PER_ADDRESS - 1
            assert "dropped to make room for a newer connection" in caplog.text
        finally:
            await silent.stop()


@pytest.mark.asyncio
async def test_a_connect_nested_3000_deep_is_refused_with_a_log_line_and_forgotten(
    ingest: RtmpIngest,
    short_flv: Path,
    pushers: list[Pusher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="transcription.live.ingest.rtmp")
    assert ingest.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.port)
    await client_handshake(reader, writer)
    writer.write(encode_message(3, AMF0_COMMAND, nested_connect(3000)))
    with contextlib.suppress(ConnectionResetError):
        assert await asyncio.wait_for(reader.read(), 5) == b"", "the gate closes the connection"
    writer.close()
    assert ingest.refused == 1
    assert not ingest._clients, "the refused client is not kept"
    assert ingest.pending == 0
    refusals = [r.getMessage() for r in caplog.records if "refused a connection" in r.getMessage()]
    assert len(refusals) == 1 and "nested deeper" in refusals[0]

    collector = Collector(ingest)
    await _push(pushers, short_flv, ingest.url())
    await collector.until(HEARD, timeout=5)


# --- a local process racing the gate ------------------------------------------------------------


def _flv_tags(flv: Path) -> list[tuple[int, int, bytes]]:
    """(type, timestamp, payload) of each tag of an FLV file."""
    data, pos, tags = flv.read_bytes(), 13, []
    while pos + 11 <= len(data):
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        stamp = int.from_bytes(data[pos + 4 : pos + 7], "big") | data[pos + 7] << 24
        tags.append((data[pos], stamp, data[pos + 11 : pos + 11 + size]))
        pos += 11 + size + 4
    return tags


def _listening_tcp(pid: int) -> set[tuple[str, int]]:
    """The TCP addresses ``pid`` listens on (``/proc/net/tcp``, IPv4)."""
    try:
        links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return set()
    found = set()
    for row in rows:
        fields = row.split()
        if fields[3] == "0A" and f"socket:[{fields[9]}]" in links:
            address, port = fields[1].split(":")
            host = socket.inet_ntoa(int(address, 16).to_bytes(4, "little"))
            found.add((host, int(port, 16)))
    return found


class LocalAttacker(threading.Thread):
    """Another local process: for every ffmpeg an ingest starts, it connects in a tight loop to
    each address on ffmpeg's command line and each TCP address ffmpeg listens on, and once in,
    publishes the clip (ffmpeg itself checks no key)."""

    def __init__(self, flv: Path) -> None:
        super().__init__(daemon=True)
        self.tags = _flv_tags(flv)
        self.connections: list[tuple[str, int]] = []
        self._watched: list[list[int]] = []
        self._done: set[int] = set()
        self._named: dict[int, set[tuple[str, int]]] = {}
        self._halt = threading.Event()

    def watch(self, pids: list[int]) -> None:
        """Attack every process that appears in ``pids`` (an ingest's live list)."""
        self._watched.append(pids)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def run(self) -> None:
        while not self._halt.is_set():
            live = [p for pids in list(self._watched) for p in list(pids) if p not in self._done]
            targets = {(pid, t) for pid in live for t in self._targets(pid)}
            for pid, target in targets:
                try:
                    sock = socket.create_connection(target, timeout=1)
                except OSError:
                    continue
                with sock, contextlib.suppress(OSError):
                    if sock.getsockname() == sock.getpeername():
                        continue  # nobody listened yet: the kernel connected it to itself
                    self.connections.append(target)
                    self._done.add(pid)
                    self._publish(sock)
            if not targets:
                time.sleep(0.001)

    def _targets(self, pid: int) -> set[tuple[str, int]]:
        """Addresses on ``pid``'s command line (read once), else the ones it listens on."""
        if pid not in self._named:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                return set()
            found = re.findall(r"(?:rtmp|tcp)://([0-9.]+):(\d+)", argv)
            self._named[pid] = {(host, int(port)) for host, port in found}
        return self._named[pid] or _listening_tcp(pid)

    def _publish(self, sock: socket.socket) -> None:
        sock.sendall(b"\x03" + bytes(HANDSHAKE_SIZE))
        needed = 1 + 2 * HANDSHAKE_SIZE
        reply = b""
        while len(reply) < needed:
            more = sock.recv(needed - len(reply))
            if not more:
                return
            reply += more
        sock.sendall(reply[1 : 1 + HANDSHAKE_SIZE])  # C2 echoes S1
        for values, stream_id in (
            (("connect", 1, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live"}), 0),
            (("createStream", 2, None), 0),
            (("publish", 3, None, "anything", "live"), 1),
        ):
            sock.sendall(encode_message(3, AMF0_COMMAND, amf0_encode(*values), stream_id=stream_id))
        for tag_type, stamp, payload in self.tags:
            if tag_type in (AUDIO, AMF0_DATA):
                sock.sendall(encode_message(4, tag_type, payload, stream_id=1, timestamp=stamp))
        time.sleep(0.5)  # let ffmpeg read it all before the connection ends


def _sockets_of(pid: int) -> list[str]:
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed since the listing
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return [link for link in links if link.startswith("socket:")]


@pytest.mark.asyncio
async def test_a_local_process_cannot_race_the_gate_for_ffmpegs_input(
    pool: PortPool, short_flv: Path
) -> None:
    attacker = LocalAttacker(short_flv)
    attacker.start()
    heard: list[float] = []
    sockets: list[list[str]] = []
    inputs: list[str] = []
    try:
        for attempt in range(3):
            ingest = RtmpIngest(stream_key=f"run-secret-race-{attempt}", ports=pool)
            attacker.watch(ingest.pids)
            async with ingest:
                collector = Collector(ingest)
                pid = ingest.ffmpeg_pid
                assert pid is not None
                await asyncio.sleep(SHORT_CLIP_SECONDS)  # an attacker's audio would be out
                sockets.append(_sockets_of(pid))
                inputs.append(os.readlink(f"/proc/{pid}/fd/0").split(":")[0])
                heard.append(collector.seconds)
    finally:
        attacker.stop()
    assert attacker.connections == [], "a local process reached ffmpeg"
    assert heard == [0.0, 0.0, 0.0], "audio reached a run without passing the gate"
    assert sockets == [[], [], []], "ffmpeg holds no socket anyone could reach"
    assert inputs == ["pipe", "pipe", "pipe"], "ffmpeg reads a pipe only the ingest holds"
