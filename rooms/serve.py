"""Daphne on uvloop: ``python -m rooms.serve`` takes Daphne's own arguments.

Daphne runs Twisted on an asyncio loop that it creates when ``daphne.server`` is imported.
Choosing uvloop's policy before that import gives Twisted and every consumer the libuv loop,
whose scheduling, timers and socket readiness calls are written in C: the transcript fan-out
(one socket write per client per event) spends much of its time there (docs/benchmarks.md).
``ROOMS_EVENT_LOOP=asyncio`` keeps the standard loop (``rooms.runtime.use_uvloop``). A write
to an idle connection goes to its socket at once (``eager_write``), the common WebSocket frames
skip autobahn's general state machine (``framed_send``, ``framed_receive``), and a binary
message to a consumer that takes it at once goes to it without the application queue
(``offered_message``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

# Twisted's modules, not its reactor: importing them installs nothing, so the loop chosen in
# main() is still the one daphne.server gets.
from twisted.internet import tcp
from twisted.internet._newtls import ConnectionMixin

from rooms import ws_frames
from rooms.runtime import use_uvloop
from rooms.ws_dispatch import offer_binary

logger = logging.getLogger(__name__)


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


def offered_message(protocol: Any, payload: bytes, is_binary: bool) -> None:
    """Daphne's ``WebSocketProtocol.onMessage``, except that a binary message goes straight to
    a consumer that takes it (``rooms.ws_dispatch.offer_binary``: an audio frame, one call)
    instead of through the application queue, a task and three turns of the loop. Anything it
    does not take, and every text message, takes Daphne's own path."""
    if is_binary and not protocol.muted:
        queue = getattr(protocol, "application_queue", None)
        if queue is not None:
            try:
                taken = offer_binary(queue, payload)
            except Exception:
                # The consumer's bug: its own path meets the message (and the bug) again.
                logger.exception("taking a binary message at once failed")
                taken = False
            if taken:
                protocol.last_ping = time.time()  # as Daphne's: the peer is alive
                return
    _daphne["onMessage"](protocol, payload, is_binary)


def framed_send(protocol: Any, content: bytes | str, binary: bool = False) -> None:
    """Daphne's ``serverSend``: an open socket with no extension, fragmentation, queued or
    logged output gets its message as one frame written at once (``rooms.ws_frames``); anything
    else goes through autobahn as before."""
    payload = content if binary else content.encode("utf8")  # type: ignore[union-attr]
    limit = protocol.maxMessagePayloadSize
    if (
        protocol.state == _OPEN
        and protocol.send_state == _SEND_GROUND
        and protocol._perMessageCompress is None
        and not protocol.autoFragmentSize
        and not protocol.send_queue
        and not protocol.maskServerFrames
        and not protocol.trackedTimings
        and not protocol.logOctets
        and not protocol.logFrames
        and not 0 < limit < len(payload)
    ):
        protocol.transport.write(ws_frames.frame(payload, binary))  # type: ignore[arg-type]
        return
    _daphne["serverSend"](protocol, content, binary)


def framed_receive(protocol: Any) -> bool:
    """autobahn's ``processData`` (one frame per call; True while more buffered data may
    hold another), except that a complete, unfragmented, masked binary frame at the start of
    the buffer of an open socket is unmasked and handed to ``onMessage`` directly
    (``rooms.ws_frames``). Anything else, and a frame autobahn is part-way through, is
    autobahn's."""
    if protocol.state == _OPEN and protocol.current_frame is None and not protocol.inside_message:
        limits = [
            n for n in (protocol.maxFramePayloadSize, protocol.maxMessagePayloadSize) if n > 0
        ]
        found = ws_frames.binary_frame(protocol.data, min(limits, default=0))
        if found is not None:
            payload, end = found
            protocol.data = protocol.data[end:]
            protocol.onMessage(payload, True)
            return len(protocol.data) > 0
    return _daphne["processData"](protocol)


_daphne: dict[str, Any] = {}
"""Daphne's (autobahn's) own methods, for what the replacements leave to them."""
_OPEN = 3  # autobahn's WebSocketProtocol.STATE_OPEN
_SEND_GROUND = 0  # autobahn's WebSocketProtocol.SEND_STATE_GROUND


def lean_websocket_protocol() -> None:
    """Install ``offered_message``, ``framed_send`` and ``framed_receive`` on Daphne's
    WebSocket protocol (once)."""
    from daphne.ws_protocol import WebSocketProtocol

    if _daphne:
        return
    for name, replacement in (
        ("onMessage", offered_message),
        ("serverSend", framed_send),
        ("processData", framed_receive),
    ):
        _daphne[name] = getattr(WebSocketProtocol, name)
        setattr(WebSocketProtocol, name, replacement)


def main() -> None:
    use_uvloop()
    plain_autobahn_log_arguments()
    eager_tcp_writes()
    from daphne.cli import CommandLineInterface  # creates Twisted's loop: after the policy

    lean_websocket_protocol()
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
