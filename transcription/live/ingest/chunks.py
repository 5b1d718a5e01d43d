"""The RTMP chunk stream: whole messages, with their timestamps, out of a publisher's bytes.

Timestamps follow ffmpeg's reader (``libavformat/rtmppkt.c``), which decoded these streams before
the gate did: a type 0 header carries the message's absolute time, types 1 and 2 a delta on
the chunk stream's previous message, and a type 3 header that starts a new message repeats the
previous header's timestamp field as a delta.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

DEFAULT_CHUNK_SIZE = 128
MAX_COMMAND_BYTES = 64 * 1024
"""A larger message before ``publish`` is refused: commands are a few hundred bytes."""
MAX_PREAMBLE_BYTES = 256 * 1024
"""Everything a client may send between its handshake and ``publish``."""

# Message type ids (RTMP 1.0 spec, sections 5.4 and 7.1).
SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AUDIO = 8
VIDEO = 9
AMF3_COMMAND = 17
AMF0_DATA = 18
AMF0_COMMAND = 20
AGGREGATE = 22

_EXTENDED = 0xFFFFFF


class RtmpRefused(Exception):
    """The peer is not the publisher this gate waits for, or does not speak RTMP."""


@dataclass
class Message:
    type_id: int
    stream_id: int
    payload: bytes
    timestamp: int = 0
    """Milliseconds, modulo 2**32."""


@dataclass
class _ChunkStream:
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    ts_field: int = 0
    """The last header's timestamp field: absolute after type 0, a delta after types 1 and 2."""
    timestamp: int = 0
    partial: bytearray = field(default_factory=bytearray)


class ChunkReader:
    """Reads whole RTMP messages from a peer and follows its control messages.

    ``max_message`` bounds one message, and twice that the bytes of all messages in progress;
    ``limit`` bounds every byte read (``None``: no bound). Exceeding either, or a malformed
    chunk header, raises :class:`RtmpRefused`. Set Chunk Size and Abort are applied here;
    :attr:`ack_window` is the peer's Window Acknowledgement Size, if it sent one.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        *,
        max_message: int = MAX_COMMAND_BYTES,
        limit: int | None = MAX_PREAMBLE_BYTES,
    ) -> None:
        self._reader = reader
        self.max_message = max_message
        self.limit = limit
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.bytes_read = 0
        self.ack_window: int | None = None
        self._streams: dict[int, _ChunkStream] = {}
        self._buffered = 0

    async def _read(self, n: int) -> bytes:
        data = await self._reader.readexactly(n)
        self.bytes_read += n
        if self.limit is not None and self.bytes_read > self.limit:
            raise RtmpRefused("too much data before publish")
        return data

    async def _uint(self, n: int) -> int:
        return int.from_bytes(await self._read(n), "big")

    async def read_message(self) -> Message:
        """The next complete message (control messages included)."""
        while True:
            first = (await self._read(1))[0]
            fmt, csid = first >> 6, first & 0x3F
            if csid == 0:
                csid = 64 + await self._uint(1)
            elif csid == 1:
                low, high = await self._read(2)
                csid = 64 + low + 256 * high
            stream = self._streams.get(csid)
            if stream is None:
                if fmt != 0:
                    raise RtmpRefused(f"chunk stream {csid} starts without a full header")
                stream = self._streams[csid] = _ChunkStream()
            length, type_id, stream_id = stream.length, stream.type_id, stream.stream_id
            ts_field = stream.ts_field
            if fmt <= 2:
                ts_field = await self._uint(3)
                if fmt <= 1:
                    length = await self._uint(3)
                    type_id = await self._uint(1)
                if fmt == 0:
                    stream_id = int.from_bytes(await self._read(4), "little")
            time_value = await self._uint(4) if ts_field == _EXTENDED else ts_field
            if stream.partial:
                if length != stream.length:
                    raise RtmpRefused(f"chunk stream {csid} changed length mid-message")
            else:
                if length > self.max_message:
                    raise RtmpRefused(f"message of {length} bytes refused")
                stream.length, stream.type_id, stream.stream_id = length, type_id, stream_id
                stream.ts_field = ts_field
                base = 0 if fmt == 0 else stream.timestamp
                stream.timestamp = (base + time_value) & 0xFFFFFFFF
            take = min(self.chunk_size, stream.length - len(stream.partial))
            stream.partial += await self._read(take)
            self._buffered += take
            if self._buffered > 2 * self.max_message:
                raise RtmpRefused("too many messages in progress")
            if len(stream.partial) < stream.length:
                continue
            message = Message(
                stream.type_id, stream.stream_id, bytes(stream.partial), stream.timestamp
            )
            self._buffered -= len(stream.partial)
            stream.partial.clear()
            self._control(message)
            return message

    def _control(self, message: Message) -> None:
        payload = message.payload
        if len(payload) < 4 or message.type_id not in (SET_CHUNK_SIZE, ABORT, WINDOW_ACK_SIZE):
            return
        value = int.from_bytes(payload[:4], "big")
        if message.type_id == SET_CHUNK_SIZE:
            size = value & 0x7FFFFFFF
            if not 1 <= size <= 0xFFFFFF:
                raise RtmpRefused(f"bad chunk size {size}")
            self.chunk_size = size
        elif message.type_id == ABORT:
            aborted = self._streams.get(value)
            if aborted is not None:
                self._buffered -= len(aborted.partial)
                aborted.partial.clear()
        else:
            self.ack_window = value or None


def encode_message(
    csid: int,
    type_id: int,
    payload: bytes,
    *,
    stream_id: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    timestamp: int = 0,
) -> bytes:
    """One message as chunks: a type 0 header, then type 3 continuation headers."""
    out = bytearray([csid & 0x3F])
    extended = timestamp >= _EXTENDED
    out += (_EXTENDED if extended else timestamp).to_bytes(3, "big")
    out += len(payload).to_bytes(3, "big") + bytes([type_id])
    out += stream_id.to_bytes(4, "little")
    ext = timestamp.to_bytes(4, "big") if extended else b""
    out += ext
    for offset in range(0, len(payload), chunk_size):
        if offset:
            out.append(0xC0 | (csid & 0x3F))
            out += ext
        out += payload[offset : offset + chunk_size]
    return bytes(out)
