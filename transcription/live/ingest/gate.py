"""The RTMP publish gate: checks a publisher's app and stream key before anything reaches ffmpeg.

ffmpeg's RTMP listener accepts a push to any app and stream key, so the ingest does not use it:
the gate is the only RTMP server. It speaks just enough RTMP, as the server, to learn what the
publisher asks for:

    C0+C1 -> S0+S1+S2 -> C2                      (simple handshake)
    connect(app, tcUrl)  -> _result              (or _error NetConnection.Connect.Rejected)
    releaseStream, FCPublish                     (no reply needed by ffmpeg, librtmp, GStreamer)
    createStream         -> _result(stream id)
    publish(stream key)  -> checked; refused with onStatus NetStream.Publish.Denied

A publisher that passes is handed back with its :class:`ChunkReader`, positioned after
``publish``; the caller answers it (:meth:`Publish.start_reply`) and reads its media messages.
The gate answers the way ffmpeg's own listener does (``libavformat/rtmpproto.c``), down to the
stream id numbering.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transcription.live.ingest.amf0 import UNDEFINED, amf0_decode, amf0_encode
from transcription.live.ingest.chunks import (
    AMF0_COMMAND,
    AMF3_COMMAND,
    SET_CHUNK_SIZE,
    SET_PEER_BANDWIDTH,
    USER_CONTROL,
    WINDOW_ACK_SIZE,
    ChunkReader,
    Message,
    RtmpRefused,
    encode_message,
)

__all__ = [
    "AMF0_COMMAND",
    "HANDSHAKE_SIZE",
    "SET_CHUNK_SIZE",
    "UNDEFINED",
    "ChunkReader",
    "Message",
    "Progress",
    "Publish",
    "RtmpRefused",
    "accept_publish",
    "amf0_decode",
    "amf0_encode",
    "client_handshake",
    "encode_message",
    "server_handshake",
]

HANDSHAKE_SIZE = 1536
RTMP_VERSION = 3

_CONTROL_CSID = 2
_COMMAND_CSID = 3
_STREAM_CSID = 5
_WINDOW = 2_500_000


class Progress(enum.IntEnum):
    """How far an unauthenticated connection got; the least advanced are dropped first."""

    ACCEPTED = 0
    """Connected; C0+C1 not (all) received."""
    HANDSHAKEN = 1
    """Sent a whole C0+C1: speaks RTMP."""
    CONNECTED = 2
    """``connect`` to the right app answered; ``publish`` not yet received."""


def _command(*values: Any, stream_id: int = 0, csid: int = _COMMAND_CSID) -> bytes:
    return encode_message(csid, AMF0_COMMAND, amf0_encode(*values), stream_id=stream_id)


def _stream_begin(stream_id: int) -> bytes:
    return encode_message(_CONTROL_CSID, USER_CONTROL, struct.pack(">HI", 0, stream_id))


# --- handshakes --------------------------------------------------------------------------------


async def server_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    hello_timeout: float | None = None,
    on_hello: Callable[[], None] | None = None,
) -> None:
    """The simple handshake as the server (S1 with a zero version field: no digest scheme).

    C0+C1 must arrive within ``hello_timeout`` seconds (``None``: no limit), else
    ``TimeoutError``; ``on_hello`` is called once they have. A client that does not start
    with RTMP's version byte is refused at once.
    """
    async with asyncio.timeout(hello_timeout):
        c0 = await reader.readexactly(1)
        if c0[0] != RTMP_VERSION:
            raise RtmpRefused(f"not RTMP (version byte {c0[0]})")
        c1 = await reader.readexactly(HANDSHAKE_SIZE)
    if on_hello is not None:
        on_hello()
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
        raise ConnectionError(f"the server answered RTMP version {s0[0]}")
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
    chunks: ChunkReader = field(repr=False)
    """The publisher's chunk stream, read up to and including ``publish``."""

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


def _decode_command(message: Message) -> list[Any]:
    payload = message.payload
    if message.type_id == AMF3_COMMAND and payload[:1] == b"\x00":
        payload = payload[1:]
    try:
        values = amf0_decode(payload)
    except ValueError as exc:
        raise RtmpRefused(str(exc)) from exc
    if len(values) < 2 or not isinstance(values[0], str):
        raise RtmpRefused("malformed command")
    return values


async def accept_publish(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    app: str,
    stream_key: str,
    hello_timeout: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> Publish:
    """Run the server side of a publisher's handshake and commands until ``publish``.

    The ``app`` of ``connect`` and the stream key of ``publish`` must equal ``app`` and
    ``stream_key`` (compared in constant time). Raises :class:`RtmpRefused` after telling the
    client why (best effort), ``TimeoutError`` when C0+C1 take longer than ``hello_timeout``;
    the caller closes the connection. ``on_progress`` hears each :class:`Progress` reached.
    Must run under an overall timeout: a client that goes silent later waits here forever.
    """

    def progress(step: Progress) -> None:
        if on_progress is not None:
            on_progress(step)

    await server_handshake(
        reader,
        writer,
        hello_timeout=hello_timeout,
        on_hello=lambda: progress(Progress.HANDSHAKEN),
    )
    chunks = ChunkReader(reader)
    connected = False
    tc_url = ""
    next_stream_id = 0
    while True:
        message = await chunks.read_message()
        if message.type_id not in (AMF0_COMMAND, AMF3_COMMAND):
            continue
        values = _decode_command(message)
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
            progress(Progress.CONNECTED)
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
            return Publish(app=app, tc_url=tc_url, stream_id=message.stream_id, chunks=chunks)
