"""RtmpIngest with real ffmpeg: a listener per run behind the publish gate, real pushers."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import imageio_ffmpeg
import pytest

from tests.ingest.conftest import CLIP_SECONDS, Collector, Pusher, ScriptedPublisher
from transcription.live.ingest import (
    FfmpegNotFound,
    IngestStatus,
    NoPublisher,
    PortPool,
    PortsExhausted,
    RtmpIngest,
    ffmpeg_path,
)
from transcription.live.ingest.ports import port_is_bindable

FIRST_AUDIO_BOUND = 1.5
"""Seconds from the push starting to the first PCM. Measured 0.15-0.4 s here (probe flags);
the bound leaves room for a loaded CI machine."""


def _alive(pid: int) -> bool:
    """True for a running process and for a zombie (an exited child nobody reaped)."""
    return os.path.exists(f"/proc/{pid}")


async def _push(pushers: list[Pusher], flv: Path, url: str, *, loop: bool = False) -> Pusher:
    pusher = await Pusher(flv, url, loop=loop).start()
    pushers.append(pusher)
    return pusher


def _with_key(url: str, key: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + key


def test_ffmpeg_path_follows_the_setting(tmp_path: Path) -> None:
    system = shutil.which("ffmpeg")
    assert system is not None
    assert ffmpeg_path("system") == system
    assert ffmpeg_path("auto") == system
    assert ffmpeg_path("bundled") == imageio_ffmpeg.get_ffmpeg_exe()
    assert ffmpeg_path(system) == system
    with pytest.raises(FfmpegNotFound):
        ffmpeg_path(str(tmp_path / "nothing-here"))


def _squat_below_a_free_port() -> socket.socket:
    """A listening socket on a port whose next port is free right now (the kernel hands out
    ports at random, so the next one can belong to another test's connection: try again)."""
    for _ in range(100):
        squatter = socket.socket()
        squatter.bind(("127.0.0.1", 0))
        if port_is_bindable("127.0.0.1", squatter.getsockname()[1] + 1):
            squatter.listen()
            return squatter
        squatter.close()
    raise AssertionError("no port with a free neighbour in 100 tries")


def test_port_pool_skips_bound_ports_and_takes_ports_back() -> None:
    with _squat_below_a_free_port() as squatter:
        taken = squatter.getsockname()[1]
        pool = PortPool(taken, taken + 1)
        first = pool.acquire()
        assert first == taken + 1  # the squatted port is skipped
        with pytest.raises(PortsExhausted):
            pool.acquire()
    pool.release(first)
    assert pool.in_use == frozenset()
    assert {pool.acquire(), pool.acquire()} == {taken, taken + 1}


@pytest.mark.asyncio
async def test_right_key_gives_pcm_fast_and_of_the_pushed_duration(
    pool: PortPool, ingest: RtmpIngest, speech_flv: Path, pushers: list[Pusher]
) -> None:
    collector = Collector(ingest)
    pushed_at = time.monotonic()
    pusher = await _push(pushers, speech_flv, ingest.url())
    await pusher.wait(timeout=CLIP_SECONDS + 10)
    await collector.until(CLIP_SECONDS - 0.5, timeout=3)
    await asyncio.sleep(0.5)  # ffmpeg decodes what it still holds after the publisher left

    assert collector.first_at is not None
    latency = collector.first_at - pushed_at
    print(f"first audio {latency * 1000:.0f} ms after the push started")
    assert latency < FIRST_AUDIO_BOUND
    assert abs(collector.seconds - CLIP_SECONDS) <= 0.5
    assert ingest.publishers == 1 and ingest.refused == 0

    pids, port = list(ingest.pids), ingest.port
    await ingest.stop()
    await asyncio.wait_for(collector.task, 2)
    assert ingest.status is IngestStatus.STOPPED
    assert not any(_alive(pid) for pid in pids), "ffmpeg left running or unreaped"
    assert port not in pool.in_use


@pytest.mark.asyncio
async def test_wrong_stream_key_is_refused_and_gives_no_pcm(
    ingest: RtmpIngest, speech_flv: Path, pushers: list[Pusher]
) -> None:
    collector = Collector(ingest)
    intruder = await _push(pushers, speech_flv, _with_key(ingest.url(), "run-secret-2"))
    assert await intruder.wait(timeout=5) != 0  # refused at publish, long before the clip ends
    await asyncio.sleep(1.0)
    assert collector.bytes == 0 and ingest.audio_seconds == 0
    assert ingest.refused == 1 and ingest.publishers == 0
    assert ingest.restarts == 0, "the intruder never reached ffmpeg"

    await _push(pushers, speech_flv, ingest.url())
    await collector.until(1.0, timeout=5)
    assert ingest.publishers == 1


@pytest.mark.asyncio
async def test_wrong_app_is_refused(
    ingest: RtmpIngest, speech_flv: Path, pushers: list[Pusher]
) -> None:
    url = ingest.url().replace("/live/", "/other/")
    intruder = await _push(pushers, speech_flv, url)
    assert await intruder.wait(timeout=5) != 0
    assert ingest.refused == 1 and ingest.audio_seconds == 0


@pytest.mark.asyncio
async def test_second_publisher_is_refused_while_one_streams(
    ingest: RtmpIngest, speech_flv: Path, pushers: list[Pusher]
) -> None:
    collector = Collector(ingest)
    await _push(pushers, speech_flv, ingest.url(), loop=True)
    await collector.until(0.5, timeout=5)
    second = await _push(pushers, speech_flv, ingest.url())
    assert await second.wait(timeout=5) != 0
    assert ingest.refused == 1 and ingest.publishers == 1
    before = collector.seconds
    await asyncio.sleep(1.0)
    assert collector.seconds > before + 0.5, "the first publisher kept streaming"


@pytest.mark.asyncio
async def test_ffmpeg_killed_mid_stream_is_restarted_and_the_retrying_pusher_resumes(
    ingest: RtmpIngest, speech_flv: Path, pushers: list[Pusher]
) -> None:
    collector = Collector(ingest)
    pusher = await _push(pushers, speech_flv, ingest.url(), loop=True)
    await collector.until(1.0, timeout=5)
    killed = ingest.ffmpeg_pid
    assert killed is not None
    os.kill(killed, signal.SIGKILL)

    assert await pusher.wait(timeout=5) != 0  # its connection dropped with ffmpeg
    before = collector.seconds
    for _ in range(20):  # egress retries its connection; so does this test
        await _push(pushers, speech_flv, ingest.url(), loop=True)
        await asyncio.sleep(0.5)
        if ingest.status is IngestStatus.STREAMING:
            break
    await collector.until(before + 1.0, timeout=5)
    assert ingest.restarts >= 1 and ingest.publishers == 2
    assert ingest.ffmpeg_pid not in (None, killed)
    assert not _alive(killed), "the killed ffmpeg was reaped"


@pytest.mark.asyncio
async def test_no_publisher_before_the_deadline_ends_the_run(pool: PortPool) -> None:
    ingest = RtmpIngest(stream_key="run-secret-3", ports=pool, accept_timeout=1.0)
    await ingest.start()
    collector = Collector(ingest)
    await asyncio.wait_for(collector.task, 5)
    assert isinstance(collector.error, NoPublisher)
    assert ingest.status is IngestStatus.NO_PUBLISHER
    assert not any(_alive(pid) for pid in ingest.pids)
    assert ingest.port not in pool.in_use
    with pytest.raises(ConnectionRefusedError):  # listens only while the run waits
        socket.create_connection(("127.0.0.1", ingest.port), timeout=1).close()
    await ingest.stop()  # harmless after giving up


@pytest.mark.asyncio
async def test_silent_or_non_rtmp_clients_are_dropped_and_do_not_block_the_egress(
    ingest: RtmpIngest, speech_flv: Path, pushers: list[Pusher]
) -> None:
    assert ingest.port is not None
    silent = socket.create_connection(("127.0.0.1", ingest.port))
    _, writer = await asyncio.open_connection("127.0.0.1", ingest.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    collector = Collector(ingest)
    await _push(pushers, speech_flv, ingest.url())
    await collector.until(0.5, timeout=5)
    await asyncio.sleep(ingest.handshake_timeout)
    assert ingest.refused == 2  # the HTTP client at once, the silent one after the timeout
    silent.close()
    writer.close()


@pytest.mark.asyncio
async def test_ffmpeg_reads_a_pipe_and_its_command_line_carries_no_secret(
    ingest: RtmpIngest,
) -> None:
    pid = ingest.ffmpeg_pid  # start() returned with ffmpeg waiting for its input
    assert pid is not None
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        args = cmdline.read().decode().split("\0")
    assert "run-secret-1" not in " ".join(args), "the secret is not on a command line"
    assert args[args.index("-i") + 1] == "pipe:0", "no address to connect to"


@pytest.mark.asyncio
async def test_a_silent_publisher_is_dropped_so_the_egress_can_reconnect(
    pool: PortPool, speech_flv: Path, pushers: list[Pusher]
) -> None:
    ingest = RtmpIngest(stream_key="run-secret-4", ports=pool, idle_timeout=1.0)
    await ingest.start()
    try:
        assert ingest.port is not None
        half_open = await ScriptedPublisher.connect(ingest.port)
        await half_open.publish(key="run-secret-4")
        await half_open.reply("onStatus")  # NetStream.Publish.Start, then nothing more
        assert ingest.status is IngestStatus.STREAMING
        collector = Collector(ingest)
        for _ in range(20):  # the egress retries while the silent one holds the slot
            await _push(pushers, speech_flv, ingest.url())
            await asyncio.sleep(0.5)
            if ingest.publishers == 2:
                break
        await collector.until(0.5, timeout=5)
        assert ingest.refused >= 1
    finally:
        await ingest.stop()


@pytest.mark.asyncio
async def test_the_bundled_ffmpeg_works_as_the_listener(
    pool: PortPool, speech_flv: Path, pushers: list[Pusher]
) -> None:
    async with RtmpIngest(stream_key="run-secret-5", ports=pool, ffmpeg="bundled") as ingest:
        assert ingest.ffmpeg == imageio_ffmpeg.get_ffmpeg_exe()
        collector = Collector(ingest)
        await _push(pushers, speech_flv, ingest.url())
        await collector.until(1.0, timeout=5)
