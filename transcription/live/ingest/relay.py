"""An authenticated publisher's media, relayed to ffmpeg as FLV over ffmpeg's stdin.

ffmpeg has no socket of its own: it reads ``-f flv -i pipe:0`` from a pipe only this process
holds, so no audio reaches a run except what a publisher sent through the gate. The gate has
already parsed the chunk stream up to ``publish``; from there each audio, video and data
message becomes one FLV tag, the way ffmpeg's own RTMP client feeds its FLV demuxer
(``libavformat/rtmpproto.c``: ``@setDataFrame`` dropped from metadata, aggregate messages
split into their tags with times rebased). Control and command messages are consumed here.
"""

from __future__ import annotations

import asyncio

from transcription.live.ingest.chunks import (
    ACKNOWLEDGEMENT,
    AGGREGATE,
    AMF0_DATA,
    AUDIO,
    VIDEO,
    Message,
    encode_message,
)
from transcription.live.ingest.gate import Publish

MAX_MEDIA_MESSAGE = 4 * 1024 * 1024
"""The largest media message relayed (an audio frame is a few hundred bytes)."""
FLV_HEADER = b"FLV\x01\x04" + (9).to_bytes(4, "big") + bytes(4)
"""FLV version 1, audio present, then PreviousTagSize0."""
_SET_DATA_FRAME = b"\x02\x00\x0d@setDataFrame"
_TAG_TYPES = (AUDIO, VIDEO, AMF0_DATA)


def flv_tag(tag_type: int, timestamp: int, data: bytes) -> bytes:
    """One FLV tag and the PreviousTagSize that follows it."""
    timestamp &= 0xFFFFFFFF
    header = bytes([tag_type]) + len(data).to_bytes(3, "big")
    header += (timestamp & 0xFFFFFF).to_bytes(3, "big") + bytes([timestamp >> 24]) + bytes(3)
    return header + data + (len(header) + len(data)).to_bytes(4, "big")


def _aggregate_tags(message: Message) -> bytes:
    data, pos, out = message.payload, 0, bytearray()
    first: int | None = None
    while pos + 11 <= len(data):
        tag_type = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        timestamp = int.from_bytes(data[pos + 4 : pos + 7], "big") | data[pos + 7] << 24
        end = pos + 11 + size
        if end + 4 > len(data):
            break
        if first is None:
            first = timestamp
        if tag_type in _TAG_TYPES:
            out += flv_tag(tag_type, message.timestamp + timestamp - first, data[pos + 11 : end])
        pos = end + 4
    return bytes(out)


def flv_tags(message: Message) -> bytes:
    """The FLV tags that carry ``message``; empty for control and command messages."""
    if message.type_id in (AUDIO, VIDEO):
        return flv_tag(message.type_id, message.timestamp, message.payload)
    if message.type_id == AMF0_DATA:
        payload = message.payload.removeprefix(_SET_DATA_FRAME)
        return flv_tag(AMF0_DATA, message.timestamp, payload)
    if message.type_id == AGGREGATE:
        return _aggregate_tags(message)
    return b""


def acknowledgement(sequence: int) -> bytes:
    """The Acknowledgement control message: ``sequence`` bytes received so far."""
    return encode_message(2, ACKNOWLEDGEMENT, (sequence & 0xFFFFFFFF).to_bytes(4, "big"))


async def relay_media(
    publish: Publish,
    client: asyncio.StreamWriter,
    decoder: asyncio.StreamWriter,
    *,
    idle_timeout: float,
) -> None:
    """Write the publisher's media to ``decoder`` as one FLV stream until the publisher leaves.

    Returns at the publisher's end of stream. Raises ``TimeoutError`` when no message came for
    ``idle_timeout`` seconds (egress sends audio without pause, and a half-open connection must
    not hold the run's one publisher slot), :class:`RtmpRefused` on a malformed stream, and
    ``OSError`` when ``decoder`` or ``client`` breaks. Acknowledges received bytes to ``client``
    at the window it asked for. The caller closes ``decoder``.
    """
    chunks = publish.chunks
    chunks.limit = None
    chunks.max_message = MAX_MEDIA_MESSAGE
    acked = chunks.bytes_read
    decoder.write(FLV_HEADER)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(idle_timeout) as idle:
        while True:
            try:
                message = await chunks.read_message()
            except asyncio.IncompleteReadError:
                return
            idle.reschedule(loop.time() + idle_timeout)
            tags = flv_tags(message)
            if tags:
                decoder.write(tags)
                await decoder.drain()
            window = chunks.ack_window
            if window is not None and chunks.bytes_read - acked >= window:
                acked = chunks.bytes_read
                client.write(acknowledgement(acked))
