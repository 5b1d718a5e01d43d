"""rooms.serve: Daphne's Twisted reactor runs on uvloop unless ROOMS_EVENT_LOOP=asyncio, and a
write to an idle TCP connection is sent at once."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live import ROOT

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
