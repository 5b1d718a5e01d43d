"""Daphne on uvloop: ``python -m rooms.serve`` takes Daphne's own arguments.

Daphne runs Twisted on an asyncio loop that it creates when ``daphne.server`` is imported.
Choosing uvloop's policy before that import gives Twisted and every consumer the libuv loop,
whose scheduling, timers and socket readiness calls are written in C: the transcript fan-out
(one socket write per client per event) spends much of its time there (docs/benchmarks.md).
``ROOMS_EVENT_LOOP=asyncio`` keeps the standard loop (``rooms.runtime.use_uvloop``). A write
to an idle connection goes to its socket at once (``eager_write``).
"""

from __future__ import annotations

from typing import Any

# Twisted's modules, not its reactor: importing them installs nothing, so the loop chosen in
# main() is still the one daphne.server gets.
from twisted.internet import tcp
from twisted.internet._newtls import ConnectionMixin

from rooms.runtime import use_uvloop


def plain_autobahn_log_arguments() -> None:
    """autobahn builds the arguments of its per-frame debug lines (``hl``, ``hltype``) before
    the logger decides to drop them, and colours them with click when click is installed (it
    is, for Celery): ~4 % of a Daphne's samples in the fan-out profile coloured text that is
    never written. Without click it is a plain ``str``."""
    import autobahn.util

    if hasattr(autobahn.util, "_HAS_CLICK"):
        autobahn.util._HAS_CLICK = False


def eager_write(connection: Any, data: bytes) -> None:
    """``tcp.Connection.write`` that sends at once when nothing is waiting to be sent.

    Twisted queues every write and registers the socket with the loop; the loop reports it
    writable, Twisted sends, finds its buffer empty and unregisters it: two ``epoll_ctl``
    calls, a loop dispatch and the reactor's logging context per message, on top of the
    ``send``. A transcript fan-out writes one message per socket per event, never two in a
    turn: the same load took ~18 % fewer of a Daphne's samples without it (docs/benchmarks.md).

    Only the idle plain-TCP case is taken: no TLS, nothing buffered, not closing, and no
    producer that Twisted would resume when its buffer drains (a pull producer, or a streaming
    one it paused). A running streaming producer is the usual case: Twisted's HTTP channel
    registers itself, and stays registered when Daphne upgrades it to a WebSocket. Whatever
    the kernel does not take at once (a full send buffer, an error) goes through Twisted's
    own path, behind nothing, so order, pausing the producer and error handling are Twisted's.
    """
    if (
        type(data) is bytes
        and data
        and connection.connected
        and not connection.TLS
        and (
            connection.producer is None
            or (connection.streamingProducer and not connection.producerPaused)
        )
        and not connection.disconnecting
        and not connection._writeDisconnecting
        and not connection._writeDisconnected
        and not connection._tempDataBuffer
        and connection.offset == len(connection.dataBuffer)
    ):
        sent = connection.writeSomeData(data)
        if type(sent) is int and sent > 0:
            if sent == len(data):
                return
            data = data[sent:]
    ConnectionMixin.write(connection, data)


def eager_tcp_writes() -> None:
    tcp.Connection.write = eager_write  # type: ignore[method-assign]


def main() -> None:
    use_uvloop()
    plain_autobahn_log_arguments()
    eager_tcp_writes()
    from daphne.cli import CommandLineInterface  # creates Twisted's loop: after the policy

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
