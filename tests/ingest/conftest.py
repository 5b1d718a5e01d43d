"""Fixtures for RTMP ingest tests: egress-like audio (AAC in FLV) and ffmpeg pushers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.fakes.livekit import FIXTURE, encode_flv
from transcription.live.ingest import (
    BYTES_PER_SECOND,
    NoPublisher,
    PortPool,
    RtmpIngest,
    ffmpeg_path,
)
from transcription.live.ingest.ffmpeg import end_process
from transcription.live.ingest.gate import (
    AMF0_COMMAND,
    SET_CHUNK_SIZE,
    ChunkReader,
    amf0_decode,
    amf0_encode,
    client_handshake,
    encode_message,
)

CLIP_SECONDS = 6.0
SHORT_CLIP_SECONDS = 1.5
LONG_TC_URL = "rtmp://ingest.example.org:41000/live?" + "x" * 200  # spans 128-byte chunks


@pytest.fixture(scope="session")
def speech_flv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 6 s of the speech fixture, encoded once as egress sends it."""
    return encode_flv(FIXTURE, tmp_path_factory.mktemp("flv") / "clip.flv", seconds=CLIP_SECONDS)


@pytest.fixture(scope="session")
def short_flv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 1.5 s of the speech fixture, for tests that push many times."""
    path = tmp_path_factory.mktemp("flv") / "short.flv"
    return encode_flv(FIXTURE, path, seconds=SHORT_CLIP_SECONDS)


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


class Collector:
    """Consumes an ingest's chunks in the background, noting when the first one came."""

    def __init__(self, ingest: RtmpIngest) -> None:
        self.ingest = ingest
        self.bytes = 0
        self.first_at: float | None = None
        self.error: BaseException | None = None
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            async for chunk in self.ingest.chunks():
                assert len(chunk) == self.ingest.chunk_bytes or len(chunk) % 2 == 0
                if self.first_at is None:
                    self.first_at = time.monotonic()
                self.bytes += len(chunk)
        except NoPublisher as exc:
            self.error = exc

    @property
    def seconds(self) -> float:
        return self.bytes / BYTES_PER_SECOND

    async def until(self, seconds: float, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.seconds < seconds:
            assert time.monotonic() < deadline, f"only {self.seconds:.2f} s of audio arrived"
            await asyncio.sleep(0.02)


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


def nested_connect(depth: int) -> bytes:
    """A ``connect`` command whose object nests ``depth`` objects: ``{"a": {"a": ...}}``."""
    objects = b"\x03" + b"\x00\x01a\x03" * (depth - 1) + b"\x00\x00\x09" * depth
    return amf0_encode("connect", 1) + objects


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
