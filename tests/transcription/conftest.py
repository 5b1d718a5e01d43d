from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from channels.testing import WebsocketCommunicator

from transcription import runner

SPEECH = Path(__file__).resolve().parent.parent / "fixtures" / "speech" / "two_cities_opening.flac"


def speech_pcm(seconds: float | None = None) -> bytes:
    """The speech fixture as PCM16LE 16 kHz mono, optionally cut to ``seconds``."""
    samples, rate = soundfile.read(SPEECH, dtype="int16")
    assert rate == 16000
    if seconds is not None:
        samples = samples[: int(seconds * rate)]
    return np.ascontiguousarray(samples).tobytes()


def frames(pcm: bytes, frame_bytes: int = 1280) -> list[bytes]:
    return [pcm[i : i + frame_bytes] for i in range(0, len(pcm) - frame_bytes + 1, frame_bytes)]


class Client:
    """A transcript WebSocket client that keeps every message it received."""

    def __init__(self, user: Any, slug: str, *, query: str = "") -> None:
        from rooms.asgi import application

        path = f"/ws/sessions/{slug}/transcript/" + (f"?{query}" if query else "")
        self.comm = WebsocketCommunicator(
            application,
            path,
            headers=[(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")],
        )
        if user is not None:
            self.comm.scope["user"] = user
        self.messages: list[dict[str, Any]] = []

    async def connect(self) -> None:
        connected, _ = await self.comm.connect()
        assert connected

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await self.comm.receive_output(timeout)
        if raw["type"] == "websocket.close":
            return {"type": "__closed__", "code": raw.get("code")}
        message = json.loads(raw["text"])
        self.messages.append(message)
        return message

    async def until(self, predicate, timeout: float = 30.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out; last messages: {self.messages[-5:]}")
            message = await self.next(timeout=remaining)
            if predicate(message):
                return message

    async def close_code(self, timeout: float = 5.0) -> int | None:
        while True:
            raw = await self.comm.receive_output(timeout)
            if raw["type"] == "websocket.close":
                return raw.get("code")

    async def disconnect(self) -> None:
        await self.comm.disconnect()


@pytest.fixture
def embedded_runner(settings):
    settings.TRANSCRIPTION_RUNNER = "embedded"
    settings.TRANSCRIPTION_HEARTBEAT_SECONDS = 0.5
    settings.TRANSCRIPTION_USAGE_CHECKPOINT_SECONDS = 1.0
    yield
    runner._main_loop = None
