"""The RTMP publish gate at the protocol level, with a scripted client over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.ingest.conftest import LONG_TC_URL, ScriptedPublisher
from transcription.ingest.gate import (
    ChunkReader,
    Publish,
    RtmpRefused,
    accept_publish,
    amf0_decode,
    amf0_encode,
)


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
async def test_right_app_and_key_pass_and_every_byte_is_kept_for_replay(gate: Gate) -> None:
    client = await ScriptedPublisher.connect(gate.port)
    connected = await client.publish()
    publish = await asyncio.wait_for(gate.results.get(), 5)

    assert isinstance(publish, Publish)
    assert connected[3]["code"] == "NetConnection.Connect.Success"
    assert (publish.app, publish.tc_url, publish.stream_id) == ("live", LONG_TC_URL, 1)
    assert publish.replay == bytes(client.sent)
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
    assert "bytes before publish" in str(await asyncio.wait_for(gate.results.get(), 5))


@pytest.mark.asyncio
async def test_a_chunk_stream_must_start_with_a_full_header(gate: Gate) -> None:
    client = await ScriptedPublisher.connect(gate.port)
    client.send(b"\x43" + bytes(7))  # fmt 1 on chunk stream 3, which has no header yet
    assert "full header" in str(await asyncio.wait_for(gate.results.get(), 5))
