"""rooms.serve: Daphne's Twisted reactor runs on uvloop unless ROOMS_EVENT_LOOP=asyncio, a
write to an idle TCP connection is sent at once, and a binary message a consumer takes at once
skips Daphne's application queue."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live import DAPHNE, ROOT, child_process, free_port, wait_for_port

# What `python -m rooms.serve` does before Daphne's command line runs, then the loop that
# daphne.server created for Twisted.
PROBE = """
from rooms import serve
serve.use_uvloop()  # what serve.main() calls first
serve.plain_autobahn_log_arguments()
import autobahn.util, daphne.server
from twisted.internet import reactor
loop = daphne.server.twisted_loop
print(type(loop).__module__, reactor._asyncioEventloop is loop)
print(autobahn.util.hl("x"))
"""


@pytest.mark.parametrize(
    ("setting", "loop_module"), [(None, "uvloop"), ("asyncio", "asyncio.unix_events")]
)
def test_daphne_gets_the_chosen_event_loop(setting: str | None, loop_module: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "rooms.settings"}
    if setting:
        env["ROOMS_EVENT_LOOP"] = setting
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    loop_line, highlighted = out.stdout.splitlines()
    assert loop_line == f"{loop_module} True"
    # autobahn's debug-line arguments are plain text, without click's colour codes.
    assert highlighted == "x"


class _Reactor:
    """What a Twisted connection asks of its reactor to write: (un)registering as a writer."""

    def __init__(self) -> None:
        self.writers: list[object] = []

    def addWriter(self, writer: object) -> None:
        if writer not in self.writers:
            self.writers.append(writer)

    def removeWriter(self, writer: object) -> None:
        if writer in self.writers:
            self.writers.remove(writer)


class _Producer:
    def __init__(self) -> None:
        self.resumed = 0

    def resumeProducing(self) -> None:
        self.resumed += 1

    def pauseProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


@pytest.fixture(name="tcp_pair")
def tcp_pair_fixture(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Any, socket.socket, _Reactor]]:
    """A Twisted TCP connection on one end of a real loopback TCP pair, with ``eager_write``
    as ``rooms.serve`` installs it, and the other end to read from."""
    from twisted.internet import tcp
    from twisted.internet.protocol import Protocol

    from rooms import serve

    monkeypatch.setattr(tcp.Connection, "write", serve.eager_write)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname())
        theirs, _ = listener.accept()
    reactor = _Reactor()
    connection = tcp.Connection(ours, Protocol(), reactor=reactor)  # type: ignore[arg-type]
    connection.connected = True
    try:
        yield connection, theirs, reactor
    finally:
        ours.close()
        theirs.close()


def _read(peer: socket.socket, size: int, connection: Any) -> bytes:
    """``size`` bytes from ``peer``, letting ``connection`` flush its buffer as the loop would."""
    got = bytearray()
    peer.settimeout(0.05)
    deadline = time.monotonic() + 10
    while len(got) < size and time.monotonic() < deadline:
        if connection.dataBuffer or connection._tempDataBuffer:
            connection.doWrite()
        try:
            got += peer.recv(1 << 20)
        except TimeoutError:
            continue
    return bytes(got)


def test_a_write_to_an_idle_connection_is_sent_at_once_without_the_loop(tcp_pair) -> None:
    connection, peer, reactor = tcp_pair
    for i in range(3):
        connection.write(b"event %d;" % i)
    assert reactor.writers == [], "nothing was queued for the loop"
    assert _read(peer, 24, connection) == b"event 0;event 1;event 2;"


def test_what_the_kernel_does_not_take_is_buffered_and_later_writes_queue_behind_it(
    tcp_pair,
) -> None:
    connection, peer, reactor = tcp_pair
    connection.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = bytes(range(256)) * 16384  # 4 MiB: far more than the send buffer holds
    connection.write(big)
    assert reactor.writers == [connection], "the rest waits for the loop"
    assert connection._tempDataLen > 0
    connection.write(b"tail")  # must not overtake what is buffered
    assert _read(peer, len(big) + 4, connection) == big + b"tail"
    assert reactor.writers == [], "drained: no longer waiting to write"


def test_a_running_streaming_producer_still_writes_at_once(tcp_pair) -> None:
    """Twisted's HTTP channel stays registered as a streaming producer after Daphne upgrades
    the connection to a WebSocket: that is the usual case, and nothing needs resuming."""
    connection, peer, reactor = tcp_pair
    connection.registerProducer(_Producer(), True)
    connection.write(b"frame")
    assert reactor.writers == []
    assert _read(peer, 5, connection) == b"frame"


@pytest.mark.parametrize("producer", ["pull", "paused"])
def test_a_producer_twisted_must_resume_or_a_lost_connection_keeps_twisted_s_write(
    tcp_pair, producer: str
) -> None:
    connection, peer, reactor = tcp_pair
    connection.registerProducer(_Producer(), producer != "pull")
    connection.producerPaused = producer == "paused"
    connection.write(b"a")
    assert reactor.writers == [connection] and connection._tempDataBuffer == [b"a"]
    connection.unregisterProducer()
    connection.write(b"b")  # behind the buffered "a", not eagerly before it
    assert _read(peer, 2, connection) == b"ab"
    connection.connected = False
    connection.write(b"lost")  # Twisted drops writes to a lost connection
    assert connection._tempDataBuffer == [] and connection.dataBuffer == b""


class _Protocol:
    """What ``offered_message`` reads of Daphne's ``WebSocketProtocol``."""

    def __init__(self, queue: Any) -> None:
        self.muted = False
        self.application_queue = queue
        self.last_ping = 0.0


@pytest.fixture(name="offered")
def offered_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list, Any]]:
    """Daphne's own ``onMessage`` replaced by a recorder, and a queue that a consumer waits on."""
    import asyncio

    from rooms import serve

    daphne_path: list[tuple[bytes, bool]] = []

    def daphne_on_message(_protocol: Any, payload: bytes, binary: bool) -> None:
        daphne_path.append((payload, binary))

    monkeypatch.setattr(serve, "_daphne", {"onMessage": daphne_on_message})
    loop = asyncio.new_event_loop()
    queue: asyncio.Queue = asyncio.Queue()
    waiting = loop.create_task(queue.get())  # the consumer's read, waiting
    loop.run_until_complete(asyncio.sleep(0))
    yield daphne_path, queue
    waiting.cancel()
    loop.run_until_complete(asyncio.gather(waiting, return_exceptions=True))
    loop.close()


def test_a_binary_message_a_consumer_takes_skips_daphne_s_queue(offered) -> None:
    from rooms import serve

    daphne_path, queue = offered
    taken: list[bytes] = []
    queue.take_binary = lambda payload: taken.append(payload) or True
    protocol = _Protocol(queue)
    serve.offered_message(protocol, b"frame", True)
    assert taken == [b"frame"] and daphne_path == [] and queue.empty()
    assert protocol.last_ping > 0, "the peer counts as alive, as on Daphne's path"


def test_text_refused_muted_and_failing_messages_take_daphne_s_path(offered, caplog) -> None:
    from rooms import serve

    daphne_path, queue = offered
    calls: list[bytes] = []

    def take(payload: bytes) -> bool:
        calls.append(payload)
        if payload == b"boom":
            raise RuntimeError("consumer bug")
        return payload != b"refused"

    queue.take_binary = take
    protocol = _Protocol(queue)
    serve.offered_message(protocol, b'{"type": "ping"}', False)
    serve.offered_message(protocol, b"refused", True)
    serve.offered_message(protocol, b"boom", True)
    protocol.muted = True
    serve.offered_message(protocol, b"muted", True)
    assert calls == [b"refused", b"boom"]
    assert daphne_path == [
        (b'{"type": "ping"}', False),
        (b"refused", True),
        (b"boom", True),
        (b"muted", True),
    ]
    assert "taking a binary message at once failed" in caplog.text


def test_lean_websocket_protocol_patches_daphne_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from daphne.ws_protocol import WebSocketProtocol

    from rooms import serve

    originals = {
        name: getattr(WebSocketProtocol, name)
        for name in ("onMessage", "serverSend", "processData")
    }
    for name, method in originals.items():
        monkeypatch.setattr(WebSocketProtocol, name, method)
    monkeypatch.setattr(serve, "_daphne", {})
    serve.lean_websocket_protocol()
    serve.lean_websocket_protocol()
    assert WebSocketProtocol.onMessage is serve.offered_message
    assert WebSocketProtocol.serverSend is serve.framed_send
    assert WebSocketProtocol.processData is serve.framed_receive
    assert serve._daphne == originals


# --- a real Daphne, as `python -m rooms.serve` starts it, echoing what it reads ------------------


class _RawClient:
    """A WebSocket client on a plain socket: the frames and the TCP segments are the test's."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(
            b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    @staticmethod
    def frame(
        opcode: int, payload: bytes, fin: bool = True, mask: bytes = b"\x11\x22\x33\x44"
    ) -> bytes:
        size = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if size <= 125:
            head += bytes([0x80 | size])
        elif size <= 0xFFFF:
            head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + size.to_bytes(8, "big")
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + masked

    def read_message(self) -> tuple[int, bytes]:
        """The next data message (opcode, payload), reassembled; pongs are skipped."""
        opcode, parts = None, []
        while True:
            while len(self.buffer) < 2:
                self.buffer += self.sock.recv(65536)
            first, second = self.buffer[0], self.buffer[1]
            assert not second & 0x80, "a server frame is never masked"
            size, start = second & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(self._need(4)[2:4], "big"), 4
            elif size == 127:
                size, start = int.from_bytes(self._need(10)[2:10], "big"), 10
            data = self._need(start + size)
            self.buffer = self.buffer[start + size :]
            kind = first & 0x0F
            if kind == 0x0A:
                continue
            opcode = opcode if kind == 0 else kind
            parts.append(data[start : start + size])
            if first & 0x80:
                return opcode, b"".join(parts)

    def _need(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            assert chunk, "closed"
            self.buffer += chunk
        return self.buffer


@pytest.fixture(name="echo_daphne", scope="module")
def echo_daphne_fixture() -> Iterator[int]:
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "rooms.settings", "DEBUG": "true"}
    args = [*DAPHNE, "-b", "127.0.0.1", "-p", str(port), "tests.rooms.echo_asgi:application"]
    log = ROOT / "artifacts" / "serve-echo-daphne.log"
    with child_process(args, env=env, log=log) as process:
        wait_for_port(port, timeout=30, process=process)
        yield port


SIZES = [1, 125, 126, 1280, 65535, 65536, 300_000]  # Daphne sends no empty message


def test_daphne_reads_and_writes_every_frame_shape_byte_for_byte(echo_daphne: int) -> None:
    """Binary and text of every length encoding (the frames ``rooms.ws_frames`` takes and the
    64-bit ones it leaves to autobahn), fragmented messages, and a ping between fragments."""
    client = _RawClient(echo_daphne)
    for size in SIZES:
        payload = bytes(i % 251 for i in range(size))
        client.sock.sendall(client.frame(2, payload))
        assert client.read_message() == (2, payload)
        text = ("ж" * (size // 2 + 1))[: max(1, size // 2)]
        client.sock.sendall(client.frame(1, text.encode()))
        assert client.read_message() == (1, text.encode())
    # Fragments, with a ping inside the message: autobahn's path, then the quick one again.
    client.sock.sendall(
        client.frame(2, b"frag-", fin=False)
        + client.frame(9, b"ping")
        + client.frame(0, b"ment", fin=True)
        + client.frame(2, b"after")
    )
    assert client.read_message() == (2, b"frag-ment")
    assert client.read_message() == (2, b"after")


def test_frames_split_and_joined_across_tcp_reads_arrive_whole_and_in_order(
    echo_daphne: int,
) -> None:
    """Many frames in one read, and frames cut anywhere between reads (so autobahn holds a
    part-read frame while the next whole ones would suit the quick path)."""
    client = _RawClient(echo_daphne)
    payloads = [bytes([n % 256]) * (1 + (n * 97) % 1500) for n in range(200)]
    stream = b"".join(client.frame(2, p, mask=bytes([n, 7, n, 9])) for n, p in enumerate(payloads))
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for start in range(0, len(stream), 997):
        client.sock.sendall(stream[start : start + 997])
        time.sleep(0.001)
    got = [client.read_message() for _ in payloads]
    assert got == [(2, p) for p in payloads]


def test_an_unmasked_client_frame_still_fails_the_connection(echo_daphne: int) -> None:
    """RFC 6455: a client must mask; autobahn drops the TCP connection (``failByDrop``)."""
    client = _RawClient(echo_daphne)
    client.sock.sendall(bytes([0x82, 5]) + b"plain")
    client.sock.settimeout(10)
    received = b""
    try:
        while chunk := client.sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    assert b"plain" not in client.buffer + received, "not echoed: refused"
