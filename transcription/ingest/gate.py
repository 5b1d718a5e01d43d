"""The RTMP publish gate: checks a publisher's app and stream key before ffmpeg sees a byte.

ffmpeg's RTMP listener accepts a push to any app and stream key, so the per-run secret in the
URL protects nothing by itself. The gate speaks just enough RTMP, as the server, to learn what
the publisher asks for:

    C0+C1 -> S0+S1+S2 -> C2                      (simple handshake)
    connect(app, tcUrl)  -> _result              (or _error NetConnection.Connect.Rejected)
    releaseStream, FCPublish                     (no reply needed by ffmpeg, librtmp, GStreamer)
    createStream         -> _result(stream id)
    publish(stream key)  -> checked; refused with onStatus NetStream.Publish.Denied

Every byte the client sent after its handshake is kept (:attr:`Publish.replay`). On success the
caller replays those bytes to ffmpeg over a connection it has already handshaken, then splices
the rest raw, so ffmpeg parses exactly the client's own chunk stream; ffmpeg's replies are
drained and dropped (the client already had ours). The gate answers the way ffmpeg's own
listener does (``libavformat/rtmpproto.c``), down to the stream id numbering.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import struct
from dataclasses import dataclass, field
from typing import Any

HANDSHAKE_SIZE = 1536
RTMP_VERSION = 3

DEFAULT_CHUNK_SIZE = 128
MAX_COMMAND_BYTES = 64 * 1024
"""A larger message before ``publish`` is refused: commands are a few hundred bytes."""
MAX_PREAMBLE_BYTES = 256 * 1024
"""Everything a client may send between its handshake and ``publish``."""

# Message type ids (RTMP 1.0 spec, section 5.4 and 7.1).
SET_CHUNK_SIZE = 1
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AMF3_COMMAND = 17
AMF0_COMMAND = 20

_CONTROL_CSID = 2
_COMMAND_CSID = 3
_STREAM_CSID = 5
_WINDOW = 2_500_000


class RtmpRefused(Exception):
    """The peer is not the publisher this gate waits for, or does not speak RTMP."""


# --- AMF0 --------------------------------------------------------------------------------------


class _Undefined:
    pass


UNDEFINED = _Undefined()


def _amf0_text(data: bytes, pos: int, length: int) -> tuple[str, int]:
    end = pos + length
    if end > len(data):
        raise IndexError("string past the end")
    return data[pos:end].decode("utf-8", "replace"), end


def _amf0_value(data: bytes, pos: int) -> tuple[Any, int]:
    marker = data[pos]
    pos += 1
    if marker == 0x00:
        return struct.unpack_from(">d", data, pos)[0], pos + 8
    if marker == 0x01:
        return data[pos] != 0, pos + 1
    if marker == 0x02:
        return _amf0_text(data, pos + 2, struct.unpack_from(">H", data, pos)[0])
    if marker == 0x0C:
        return _amf0_text(data, pos + 4, struct.unpack_from(">I", data, pos)[0])
    if marker in (0x03, 0x08):  # object, ECMA array (with a count we do not need)
        if marker == 0x08:
            pos += 4
        obj: dict[str, Any] = {}
        while True:
            (length,) = struct.unpack_from(">H", data, pos)
            if length == 0 and data[pos + 2] == 0x09:
                return obj, pos + 3
            name, pos = _amf0_text(data, pos + 2, length)
            obj[name], pos = _amf0_value(data, pos)
    if marker == 0x0A:
        (count,) = struct.unpack_from(">I", data, pos)
        pos += 4
        items = []
        for _ in range(min(count, len(data))):
            item, pos = _amf0_value(data, pos)
            items.append(item)
        return items, pos
    if marker == 0x05:
        return None, pos
    if marker == 0x06:
        return UNDEFINED, pos
    if marker == 0x0B:
        return struct.unpack_from(">d", data, pos)[0], pos + 10
    raise ValueError(f"unsupported AMF0 marker {marker:#x}")


def amf0_decode(data: bytes) -> list[Any]:
    """Decode a sequence of AMF0 values (the body of a command message)."""
    values, pos = [], 0
    try:
        while pos < len(data):
            value, pos = _amf0_value(data, pos)
            values.append(value)
    except (IndexError, struct.error) as exc:
        raise ValueError("truncated AMF0 data") from exc
    return values


def _amf0_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def amf0_encode(*values: Any) -> bytes:
    """Encode numbers, strings, booleans, ``None`` (null) and ``dict`` (object) as AMF0."""
    out = bytearray()
    for value in values:
        if value is None:
            out += b"\x05"
        elif isinstance(value, bool):
            out += b"\x01" + (b"\x01" if value else b"\x00")
        elif isinstance(value, int | float):
            out += b"\x00" + struct.pack(">d", float(value))
        elif isinstance(value, str):
            out += b"\x02" + _amf0_string(value)
        elif isinstance(value, dict):
            out += b"\x03"
            for name, item in value.items():
                out += _amf0_string(name) + amf0_encode(item)
            out += b"\x00\x00\x09"
        else:
            raise TypeError(f"cannot encode {type(value).__name__} as AMF0")
    return bytes(out)


# --- chunk stream ------------------------------------------------------------------------------


@dataclass
class Message:
    type_id: int
    stream_id: int
    payload: bytes


@dataclass
class _ChunkHeader:
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False


class ChunkReader:
    """Reads whole RTMP messages from a client, keeping every byte it reads in :attr:`raw`."""

    def __init__(self, reader: asyncio.StreamReader, *, max_message: int = MAX_COMMAND_BYTES):
        self._reader = reader
        self._max_message = max_message
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.raw = bytearray()
        self._headers: dict[int, _ChunkHeader] = {}
        self._partial: dict[int, bytearray] = {}

    async def _read(self, n: int) -> bytes:
        data = await self._reader.readexactly(n)
        self.raw += data
        if len(self.raw) > MAX_PREAMBLE_BYTES:
            raise RtmpRefused("too much data before publish")
        return data

    async def _uint(self, n: int) -> int:
        return int.from_bytes(await self._read(n), "big")

    async def read_message(self) -> Message:
        while True:
            first = (await self._read(1))[0]
            fmt, csid = first >> 6, first & 0x3F
            if csid == 0:
                csid = 64 + await self._uint(1)
            elif csid == 1:
                low, high = await self._read(2)
                csid = 64 + low + 256 * high
            header = self._headers.get(csid)
            if header is None:
                if fmt != 0:
                    raise RtmpRefused(f"chunk stream {csid} starts without a full header")
                header = self._headers[csid] = _ChunkHeader()
            partial = self._partial.setdefault(csid, bytearray())
            if fmt <= 2:
                # Timestamps are not needed to find the publish command; only their size is.
                header.extended = await self._uint(3) == 0xFFFFFF
                if fmt <= 1:
                    header.length = await self._uint(3)
                    header.type_id = await self._uint(1)
                if fmt == 0:
                    header.stream_id = int.from_bytes(await self._read(4), "little")
            if header.extended:
                await self._read(4)
            if header.length > self._max_message:
                raise RtmpRefused(f"message of {header.length} bytes before publish")
            take = min(self.chunk_size, header.length - len(partial))
            partial += await self._read(take)
            if len(partial) >= header.length:
                payload = bytes(partial)
                partial.clear()
                message = Message(header.type_id, header.stream_id, payload)
                if message.type_id == SET_CHUNK_SIZE and len(payload) >= 4:
                    size = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                    if not 1 <= size <= 0xFFFFFF:
                        raise RtmpRefused(f"bad chunk size {size}")
                    self.chunk_size = size
                return message


def encode_message(
    csid: int,
    type_id: int,
    payload: bytes,
    *,
    stream_id: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> bytes:
    """One message as chunks: a type 0 header, then type 3 continuation headers."""
    out = bytearray([csid & 0x3F])
    out += (0).to_bytes(3, "big") + len(payload).to_bytes(3, "big") + bytes([type_id])
    out += stream_id.to_bytes(4, "little")
    for offset in range(0, len(payload), chunk_size):
        if offset:
            out.append(0xC0 | (csid & 0x3F))
        out += payload[offset : offset + chunk_size]
    return bytes(out)


def _command(*values: Any, stream_id: int = 0, csid: int = _COMMAND_CSID) -> bytes:
    return encode_message(csid, AMF0_COMMAND, amf0_encode(*values), stream_id=stream_id)


def _stream_begin(stream_id: int) -> bytes:
    return encode_message(_CONTROL_CSID, USER_CONTROL, struct.pack(">HI", 0, stream_id))


# --- handshakes --------------------------------------------------------------------------------


async def server_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The simple handshake as the server (S1 with a zero version field: no digest scheme)."""
    c0 = await reader.readexactly(1)
    if c0[0] != RTMP_VERSION:
        raise RtmpRefused(f"not RTMP (version byte {c0[0]})")
    c1 = await reader.readexactly(HANDSHAKE_SIZE)
    s1 = c1[:4] + bytes(4) + os.urandom(HANDSHAKE_SIZE - 8)
    writer.write(bytes([RTMP_VERSION]) + s1 + c1)
    await writer.drain()
    await reader.readexactly(HANDSHAKE_SIZE)  # C2: ffmpeg's listener only warns on a mismatch


async def client_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The simple handshake as a client (what ffmpeg's publishing client does)."""
    writer.write(bytes([RTMP_VERSION]) + bytes(8) + os.urandom(HANDSHAKE_SIZE - 8))
    await writer.drain()
    s0 = await reader.readexactly(1)
    if s0[0] != RTMP_VERSION:
        raise ConnectionError(f"upstream answered RTMP version {s0[0]}")
    s1 = await reader.readexactly(HANDSHAKE_SIZE)
    await reader.readexactly(HANDSHAKE_SIZE)  # S2
    writer.write(s1)
    await writer.drain()


# --- the gate ----------------------------------------------------------------------------------


@dataclass
class Publish:
    """A publisher that passed the gate."""

    app: str
    tc_url: str
    stream_id: int
    replay: bytes = field(repr=False)
    """Every byte the client sent after its handshake, up to and including ``publish``."""

    def start_reply(self) -> bytes:
        """What ffmpeg's listener answers an accepted ``publish`` with."""
        return _stream_begin(self.stream_id) + _command(
            "onStatus",
            0,
            None,
            {
                "level": "status",
                "code": "NetStream.Publish.Start",
                "description": "Stream is now published.",
                "details": "live",
            },
            stream_id=self.stream_id,
            csid=_STREAM_CSID,
        )


def _connect_reply(txn: float) -> bytes:
    return (
        encode_message(_CONTROL_CSID, WINDOW_ACK_SIZE, struct.pack(">I", _WINDOW))
        + encode_message(_CONTROL_CSID, SET_PEER_BANDWIDTH, struct.pack(">IB", _WINDOW, 2))
        + _stream_begin(0)
        + _command(
            "_result",
            txn,
            {"fmsVer": "FMS/3,0,1,123", "capabilities": 31},
            {
                "level": "status",
                "code": "NetConnection.Connect.Success",
                "description": "Connection succeeded.",
                "objectEncoding": 0,
            },
        )
    )


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


async def accept_publish(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    app: str,
    stream_key: str,
) -> Publish:
    """Run the server side of a publisher's handshake and commands until ``publish``.

    The ``app`` of ``connect`` and the stream key of ``publish`` must equal ``app`` and
    ``stream_key`` (compared in constant time). Raises :class:`RtmpRefused` after telling the
    client why (best effort); the caller closes the connection. Must run under a timeout: a
    silent client waits here forever.
    """
    await server_handshake(reader, writer)
    chunks = ChunkReader(reader)
    connected = False
    tc_url = ""
    next_stream_id = 0
    while True:
        message = await chunks.read_message()
        if message.type_id not in (AMF0_COMMAND, AMF3_COMMAND):
            continue
        payload = message.payload
        if message.type_id == AMF3_COMMAND and payload[:1] == b"\x00":
            payload = payload[1:]
        try:
            values = amf0_decode(payload)
        except ValueError as exc:
            raise RtmpRefused(str(exc)) from exc
        if len(values) < 2 or not isinstance(values[0], str):
            raise RtmpRefused("malformed command")
        name, txn = values[0], values[1] if isinstance(values[1], float) else 0.0
        if name == "connect":
            info = values[2] if len(values) > 2 and isinstance(values[2], dict) else {}
            asked = info.get("app")
            tc_url = str(info.get("tcUrl", ""))
            if not isinstance(asked, str) or not _same(asked, app):
                writer.write(
                    _command(
                        "_error",
                        txn,
                        None,
                        {
                            "level": "error",
                            "code": "NetConnection.Connect.Rejected",
                            "description": "Connection rejected.",
                        },
                    )
                )
                raise RtmpRefused(f"connect to app {asked!r} refused")
            connected = True
            writer.write(_connect_reply(txn))
            await writer.drain()
        elif not connected:
            raise RtmpRefused(f"{name!r} before connect")
        elif name == "createStream":
            next_stream_id += 1
            if next_stream_id == 2:  # ffmpeg's listener skips 2 (reserved); match its numbering
                next_stream_id += 1
            writer.write(_command("_result", txn, None, next_stream_id))
            await writer.drain()
        elif name == "publish":
            key = values[3] if len(values) > 3 and isinstance(values[3], str) else ""
            if not _same(key, stream_key):
                writer.write(
                    _command(
                        "onStatus",
                        0,
                        None,
                        {
                            "level": "error",
                            "code": "NetStream.Publish.Denied",
                            "description": "Publishing refused.",
                        },
                        stream_id=message.stream_id,
                        csid=_STREAM_CSID,
                    )
                )
                raise RtmpRefused("publish with a wrong stream key")
            return Publish(
                app=app,
                tc_url=tc_url,
                stream_id=message.stream_id,
                replay=bytes(chunks.raw),
            )
