"""Fixtures for RTMP ingest tests: egress-like audio (AAC in FLV) and ffmpeg pushers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.fakes.livekit import FIXTURE, encode_flv
from transcription.ingest import PortPool, RtmpIngest, ffmpeg_path
from transcription.ingest.ffmpeg import end_process
from transcription.ingest.gate import (
    AMF0_COMMAND,
    SET_CHUNK_SIZE,
    ChunkReader,
    amf0_decode,
    amf0_encode,
    client_handshake,
    encode_message,
)

CLIP_SECONDS = 6.0
LONG_TC_URL = "rtmp://ingest.example.org:41000/live?" + "x" * 200  # spans 128-byte chunks


@pytest.fixture(scope="session")
def speech_flv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 6 s of the speech fixture, encoded once as egress sends it."""
    return encode_flv(FIXTURE, tmp_path_factory.mktemp("flv") / "clip.flv", seconds=CLIP_SECONDS)


@pytest.fixture
def pool() -> Iterator[PortPool]:
    ports = PortPool(47100, 47199)
    yield ports
    assert not ports.in_use, "an ingest kept its port"


@pytest_asyncio.fixture
async def ingest(pool: PortPool) -> AsyncIterator[RtmpIngest]:
    rtmp = RtmpIngest(stream_key="run-secret-1", ports=pool, handshake_timeout=2.0)
    await rtmp.start()
    try:
        yield rtmp
    finally:
        await rtmp.stop()


class Pusher:
    """An ffmpeg publisher pushing pre-encoded AAC/FLV at real time (``-re -c copy``)."""

    def __init__(self, flv: Path, url: str, *, loop: bool = False) -> None:
        self.flv = flv
        self.url = url
        self.loop = loop
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Pusher:
        looping = ["-stream_loop", "-1"] if self.loop else []
        self.proc = await asyncio.create_subprocess_exec(
            *(ffmpeg_path(), "-hide_banner", "-loglevel", "quiet", "-nostdin", "-re"),
            *(*looping, "-i", str(self.flv), "-c", "copy", "-f", "flv", self.url),
            stdin=asyncio.subprocess.DEVNULL,
        )
        return self

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stop(self) -> None:
        if self.proc is not None:
            await end_process(self.proc)


@pytest_asyncio.fixture
async def pushers() -> AsyncIterator[list[Pusher]]:
    """Pushers a test started; all are ended afterwards."""
    started: list[Pusher] = []
    yield started
    for pusher in started:
        await pusher.stop()


class ScriptedPublisher:
    """An RTMP publisher written out step by step (ffmpeg's order of commands), recording
    every byte it sends after the handshake; it sends no media unless told to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.replies = ChunkReader(reader, max_message=1 << 20)
        self.sent = bytearray()
        self.chunk_size = 128

    @classmethod
    async def connect(cls, port: int) -> ScriptedPublisher:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await client_handshake(reader, writer)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.sent += data
        self.writer.write(data)

    def command(self, *values: object, stream_id: int = 0, csid: int = 3) -> None:
        payload = amf0_encode(*values)
        self.send(
            encode_message(
                csid, AMF0_COMMAND, payload, stream_id=stream_id, chunk_size=self.chunk_size
            )
        )

    async def reply(self, name: str) -> list[Any]:
        while True:
            message = await asyncio.wait_for(self.replies.read_message(), 5)
            if message.type_id == AMF0_COMMAND:
                values = amf0_decode(message.payload)
                if values[0] == name:
                    return values

    async def publish(self, *, app: str = "live", key: str = "the-secret") -> list[Any]:
        self.command("connect", 1, {"app": app, "type": "nonprivate", "tcUrl": LONG_TC_URL})
        result = await self.reply("_result")
        self.command("releaseStream", 2, None, key)
        self.command("FCPublish", 3, None, key)
        self.command("createStream", 4, None)
        stream_id = int((await self.reply("_result"))[3])
        self.send(encode_message(2, SET_CHUNK_SIZE, (4096).to_bytes(4, "big")))
        self.chunk_size = 4096
        self.command("publish", 5, None, key, "live", stream_id=stream_id, csid=8)
        return result
