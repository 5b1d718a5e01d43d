"""The RTMP publish gate at the protocol level (a scripted client over loopback), the chunk
stream, the FLV relay and the admission of unauthenticated connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import pytest
import pytest_asyncio

from tests.ingest.conftest import LONG_TC_URL, ScriptedPublisher, nested_connect
from transcription.live.ingest.admission import Admission, Pending
from transcription.live.ingest.amf0 import MAX_DEPTH
from transcription.live.ingest.chunks import AGGREGATE, AMF0_COMMAND, AMF0_DATA, AUDIO, Message
from transcription.live.ingest.gate import (
    ChunkReader,
    Progress,
    Publish,
    RtmpRefused,
    accept_publish,
    amf0_decode,
    amf0_encode,
    encode_message,
)
from transcription.live.ingest.relay import flv_tag, flv_tags


class Gate:
    """A loopback server running ``accept_publish`` once per connection."""

    def __init__(self) -> None:
        self.results: asyncio.Queue[Publish | Exception] = asyncio.Queue()
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            result: Publish | Exception = await accept_publish(
                reader, writer, app="live", stream_key="the-secret"
            )
        except (RtmpRefused, asyncio.IncompleteReadError) as exc:
            result = exc
        await writer.drain()
        writer.close()
        await self.results.put(result)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]


@pytest_asyncio.fixture
async def gate() -> AsyncIterator[Gate]:
    gate = Gate()
    gate.server = await asyncio.start_server(gate.handle, "127.0.0.1", 0)
    yield gate
    gate.server.close()


def test_amf0_round_trip() -> None:
    values = ["connect", 1.0, {"app": "live", "n": 2.5, "ok": True, "inner": {"x": None}}, None]
    assert amf0_decode(amf0_encode(*values)) == values
    with pytest.raises(ValueError):
        amf0_decode(amf0_encode("connect")[:-2])


@pytest.mark.asyncio
async def test_right_app_and_key_pass_with_the_chunk_stream_read_up_to_publish(gate: Gate) -> None:
    client = await ScriptedPublisher.connect(gate.port)
    connected = await client.publish()
    publish = await asyncio.wait_for(gate.results.get(), 5)

    assert isinstance(publish, Publish)
    assert connected[3]["code"] == "NetConnection.Connect.Success"
    assert (publish.app, publish.tc_url, publish.stream_id) == ("live", LONG_TC_URL, 1)
    assert publish.chunks.bytes_read == len(client.sent)
    assert publish.chunks.chunk_size == 4096  # the client's Set Chunk Size was followed
    reply = asyncio.StreamReader()
    reply.feed_data(publish.start_reply())
    reader = ChunkReader(reply)
    await reader.read_message()  # User Control: Stream Begin
    status_message = await reader.read_message()
    assert status_message.stream_id == publish.stream_id
    status = amf0_decode(status_message.payload)
    assert status[0] == "onStatus" and status[3]["code"] == "NetStream.Publish.Start"


@pytest.mark.asyncio
async def test_wrong_key_is_refused_with_publish_denied(gate: Gate) -> None:
    client = await ScriptedPublisher.connect(gate.port)
    await client.publish(key="the-secreT")
    denied = await client.reply("onStatus")
    assert denied[3]["code"] == "NetStream.Publish.Denied"
    refused = await asyncio.wait_for(gate.results.get(), 5)
    assert isinstance(refused, RtmpRefused) and "key" in str(refused)


@pytest.mark.asyncio
async def test_wrong_app_is_rejected_at_connect(gate: Gate) -> None:
    client = await ScriptedPublisher.connect(gate.port)
    client.command("connect", 1, {"app": "live2", "tcUrl": "rtmp://h/live2"})
    rejected = await client.reply("_error")
    assert rejected[3]["code"] == "NetConnection.Connect.Rejected"
    assert isinstance(await asyncio.wait_for(gate.results.get(), 5), RtmpRefused)


@pytest.mark.asyncio
async def test_publish_before_connect_and_oversized_messages_are_refused(gate: Gate) -> None:
    client = await ScriptedPublisher.connect(gate.port)
    client.command("publish", 1, None, "the-secret", "live")
    assert "before connect" in str(await asyncio.wait_for(gate.results.get(), 5))

    client = await ScriptedPublisher.connect(gate.port)
    client.command("connect", 1, {"app": "live", "a": "x" * 40_000, "b": "x" * 40_000})
    assert "message of 80047 bytes" in str(await asyncio.wait_for(gate.results.get(), 5))


@pytest.mark.asyncio
async def test_a_chunk_stream_must_start_with_a_full_header(gate: Gate) -> None:
    client = await ScriptedPublisher.connect(gate.port)
    client.send(b"\x43" + bytes(7))  # fmt 1 on chunk stream 3, which has no header yet
    assert "full header" in str(await asyncio.wait_for(gate.results.get(), 5))


def test_amf0_nesting_is_bounded() -> None:
    assert amf0_decode(nested_connect(MAX_DEPTH))[0] == "connect"
    with pytest.raises(ValueError, match="nested deeper"):
        amf0_decode(nested_connect(MAX_DEPTH + 1))
    with pytest.raises(ValueError, match="nested deeper"):
        amf0_decode(nested_connect(3000))


@pytest.mark.asyncio
async def test_a_connect_nested_3000_deep_is_refused_not_a_recursion_error(gate: Gate) -> None:
    client = await ScriptedPublisher.connect(gate.port)
    client.send(encode_message(3, AMF0_COMMAND, nested_connect(3000)))
    refused = await asyncio.wait_for(gate.results.get(), 5)
    assert isinstance(refused, RtmpRefused) and "nested deeper" in str(refused)


@pytest.mark.asyncio
async def test_chunk_timestamps_follow_ffmpegs_reader() -> None:
    def header(fmt: int, field: int, *rest: bytes) -> bytes:
        return bytes([fmt << 6 | 4]) + field.to_bytes(3, "big") + b"".join(rest)

    length, audio, stream = (2).to_bytes(3, "big"), bytes([AUDIO]), (1).to_bytes(4, "little")
    late = 0x01020304  # past 24 bits: an extended timestamp, repeated on continuation chunks
    feed = asyncio.StreamReader()
    feed.feed_data(
        header(0, 1000, length, audio, stream, b"a0")  # absolute
        + header(1, 23, length, audio, b"a1")  # a delta
        + header(2, 23, b"a2")  # the same delta
        + bytes([3 << 6 | 4])  # a new message repeating the last delta
        + b"a3"
        + encode_message(4, AUDIO, bytes(300), stream_id=1, timestamp=late)
    )
    chunks = ChunkReader(feed, limit=None)
    messages = [await chunks.read_message() for _ in range(5)]
    assert [m.timestamp for m in messages] == [1000, 1023, 1046, 1069, late]
    assert [m.payload for m in messages[:4]] == [b"a0", b"a1", b"a2", b"a3"]
    assert messages[4].payload == bytes(300) and messages[4].stream_id == 1


def test_media_messages_become_flv_tags_like_ffmpegs_rtmp_client() -> None:
    metadata = amf0_encode("onMetaData", {"audiocodecid": 10})
    set_data_frame = amf0_encode("@setDataFrame") + metadata
    assert flv_tags(Message(AMF0_DATA, 1, set_data_frame, 0)) == flv_tag(AMF0_DATA, 0, metadata)

    tag = flv_tags(Message(AUDIO, 1, b"\xaf\x01xyz", 0x01020304))
    assert tag[:11] == bytes([AUDIO, 0, 0, 5, 0x02, 0x03, 0x04, 0x01, 0, 0, 0])
    assert tag[11:] == b"\xaf\x01xyz" + (16).to_bytes(4, "big")

    inner = flv_tag(AUDIO, 500, b"one") + flv_tag(AUDIO, 520, b"two")
    assert flv_tags(Message(AGGREGATE, 1, inner, 1000)) == (
        flv_tag(AUDIO, 1000, b"one") + flv_tag(AUDIO, 1020, b"two")
    )
    assert flv_tags(Message(AMF0_COMMAND, 1, amf0_encode("FCUnpublish", 6, None), 0)) == b""


def test_admission_makes_room_from_the_crowded_address_least_advanced_first() -> None:
    admission = Admission(total=4, per_address=3)

    def admit(address: str) -> tuple[Pending, Pending | None]:
        return admission.admit(address, cast(asyncio.StreamWriter, object()))

    a1, _ = admit("10.0.0.1")
    a2, _ = admit("10.0.0.1")
    a3, _ = admit("10.0.0.1")
    a1.advance(Progress.HANDSHAKEN)
    # The address is at its cap: a newcomer from it displaces its least advanced, oldest one.
    a4, dropped = admit("10.0.0.1")
    assert dropped is a2 and a2.dropped and len(admission) == 3
    b1, dropped = admit("10.0.0.2")
    assert dropped is None and len(admission) == 4
    # All full: room comes from the address holding the most, never from the lone one.
    _, dropped = admit("10.0.0.3")
    assert dropped is a3 and not b1.dropped
    admission.release(a4)
    admission.release(a4)  # harmless twice
    assert len(admission) == 3
