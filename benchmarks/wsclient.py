"""A lean WebSocket client for the load generators, on picows (framing and masking in Cython).

The load generators run on the box whose server they measure. With the ``websockets`` client
the fan-out generator used ~45 % of one of the two cores to read 10,000 messages a second, and
the pipeline generator ~0.27 cores to send 2,500 frames a second: CPU the server did not get,
counted in the server's latency. A message costs a Python call here (``on_text``), not a
generator step, a future and a task wake-up.

The protocol is the same RFC 6455 client: the HTTP upgrade through the balancer with the
page's ``Origin``, masked frames out, pings answered, fragmented text reassembled, the close
handshake answered and ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from picows import WSCloseCode, WSError, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = ["CONNECT_ERRORS", "Socket", "connect"]

CONNECT_ERRORS = (OSError, TimeoutError, WSError)
"""What a refused, reset or timed-out handshake raises."""

# picows logs every connection at INFO: thousands of lines per run, none of them a result.
logging.getLogger("picows").setLevel(logging.WARNING)


class Socket(WSListener):
    """One client socket. Text messages are queued for :meth:`recv` until ``on_text`` is set,
    then handed to it as they arrive; with ``discard`` set they are dropped unread."""

    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self.on_text: Callable[[str], None] | None = None
        self.discard = False
        self.closed = False
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._parts: list[bytes] | None = None  # a fragmented text message being reassembled

    # picows callbacks --------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.TEXT and frame.fin and self._parts is None:
            if not self.discard:
                self._text(frame.get_payload_as_utf8_text())
        elif kind == WSMsgType.TEXT or (kind == WSMsgType.CONTINUATION and self._parts is not None):
            parts = self._parts = (self._parts or []) + [frame.get_payload_as_bytes()]
            if frame.fin:
                self._parts = None
                if not self.discard:
                    self._text(b"".join(parts).decode())
        elif kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        # Pings are answered by picows (enable_auto_pong); binary messages are not ours.

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed = True
        self._queue.put_nowait(None)

    def _text(self, text: str) -> None:
        if self.on_text is not None:
            self.on_text(text)
        else:
            self._queue.put_nowait(text)

    # API ---------------------------------------------------------------------------------

    async def recv(self, timeout: float) -> str:
        """The next text message not handed to ``on_text``; ConnectionError once closed."""
        text = await asyncio.wait_for(self._queue.get(), timeout)
        if text is None:
            self._queue.put_nowait(None)
            raise ConnectionError("closed")
        return text

    def send_bytes(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.send(WSMsgType.BINARY, data)

    async def close(self, timeout: float = 10.0) -> None:
        """The close handshake: send ours, wait for the server's and the TCP close."""
        transport = self.transport
        if transport is None or self.closed:
            return
        transport.send_close(WSCloseCode.OK)
        try:
            await asyncio.wait_for(transport.wait_disconnected(), timeout)
        except TimeoutError:
            transport.disconnect()

    async def wait_closed(self) -> None:
        if self.transport is not None:
            await self.transport.wait_disconnected()


async def connect(url: str, origin: str, timeout: float = 60.0) -> Socket:
    """Open ``url`` (``ws://``) as the page would, with ``origin`` as its ``Origin``."""
    _, socket = await ws_connect(
        Socket,
        url,
        extra_headers={"Origin": origin},
        websocket_handshake_timeout=timeout,
        max_frame_size=16 * 1024 * 1024,
    )
    assert isinstance(socket, Socket)
    return socket
