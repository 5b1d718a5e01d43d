"""The offline engine (Whisper tiny.en + Silero VAD), end to end with its real decoder process.

All streams of this module share the process's one decoder (as the runs of a Daphne or Celery
process do), so the model loads once.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile

from transcription.live.stt import SttError, SttEvent, open_stream
from transcription.live.stt import local as local_module
from transcription.live.stt.local import LocalSttStream, default_model_dir
from transcription.live.stt.whisper_pool import DecoderPool, get_pool

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "speech"
CHUNK_BYTES = 1280  # 40 ms of PCM16 at 16 kHz
BYTES_PER_SECOND = 32000


def reference(name: str) -> str:
    """The reference transcript printed under ``name`` in the fixture README."""
    readme = (FIXTURES / "README.md").read_text()
    blocks = re.findall(r"\n\n {4}(\S.+)\n", readme)
    assert len(blocks) == 2, "two reference blocks expected in the fixture README"
    return blocks[0 if name == "two_cities_opening.flac" else 1].strip()


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def load_pcm(name: str) -> bytes:
    samples, rate = soundfile.read(FIXTURES / name, dtype="int16")
    assert rate == 16000 and samples.ndim == 1
    return np.ascontiguousarray(samples).tobytes()


@pytest.fixture(scope="module")
def speech_pcm() -> bytes:
    return load_pcm("two_cities_opening.flac")


async def transcribe(
    pcm: bytes,
    stream: LocalSttStream | None = None,
    *,
    realtime: bool = False,
    start: bool = True,
) -> list[tuple[float, SttEvent]]:
    """Feed ``pcm`` (as fast as it is taken, or at real time) and close; the events with
    the stream time that had been sent when each arrived."""
    stream = stream or LocalSttStream(languages=["en"])
    if start:
        await stream.start()
    events: list[tuple[float, SttEvent]] = []
    sent = 0
    began = time.perf_counter()

    async def collect() -> None:
        async for event in stream.events():
            now = time.perf_counter() - began if realtime else sent / BYTES_PER_SECOND
            events.append((now, event))

    collector = asyncio.create_task(collect())
    for offset in range(0, len(pcm), CHUNK_BYTES):
        await stream.send_audio(pcm[offset : offset + CHUNK_BYTES])
        sent = offset + CHUNK_BYTES
        # A real source awaits its socket between chunks: let the loop run (the stall test).
        delay = sent / BYTES_PER_SECOND - (time.perf_counter() - began) if realtime else 0.0
        await asyncio.sleep(max(0.0, delay))
    await stream.close()
    # events() must end on its own once close() has drained.
    await asyncio.wait_for(collector, timeout=10)
    return events


def finals_of(events: list[tuple[float, SttEvent]]) -> list[SttEvent]:
    return [event for _, event in events if event.is_final]


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["two_cities_opening.flac", "two_cities_continuation.flac"])
async def test_recording_is_transcribed_within_the_wer_target(name: str) -> None:
    # The opening is the dev clip; no setting was tuned on the continuation (held out).
    pcm = load_pcm(name)
    finals = finals_of(await transcribe(pcm))
    hypothesis = normalise(" ".join(e.text for e in finals))
    wer = jiwer.wer(reference(name), hypothesis)
    assert wer <= 0.10, f"WER {wer:.3f}: {hypothesis!r}"

    assert len(finals) >= 2, "long speech comes as several utterances"
    audio_seconds = len(pcm) / BYTES_PER_SECOND
    starts = [e.start for e in finals]
    assert starts == sorted(starts)
    for event in finals:
        assert 0 <= event.start < event.end <= audio_seconds + 0.01, event
        assert event.language == "en"
        # Whisper's word timestamps fill the final; the confidence is their mean.
        assert event.words, event
        assert normalise(" ".join(w.text for w in event.words)) == normalise(event.text)
        for word in event.words:
            assert event.start <= word.start <= word.end <= event.end, (word, event)
            assert 0.0 <= word.confidence <= 1.0
        assert event.confidence == pytest.approx(
            sum(w.confidence for w in event.words) / len(event.words), abs=1e-3
        )
    ids = [e.utterance_id for e in finals]
    assert len(set(ids)) == len(ids)


@pytest.mark.asyncio
async def test_speech_at_real_time_gets_partials_then_prompt_finals(speech_pcm: bytes) -> None:
    pcm = speech_pcm[: 9 * BYTES_PER_SECOND]
    events = await transcribe(pcm, realtime=True)
    finals = finals_of(events)
    partials = [event for _, event in events if not event.is_final]
    assert finals and partials, "partials while someone speaks, finals after"
    # A partial belongs to the utterance it precedes, and never comes after its final.
    assert {e.utterance_id for e in partials} <= {e.utterance_id for e in finals}
    for index, (_, final) in enumerate(events):
        if final.is_final:
            later = [e for _, e in events[index + 1 :] if e.utterance_id == final.utterance_id]
            assert not later, later
    # Finals come soon after speech ends (the benchmark measures p95 on a quiet box; this
    # bound only catches a final that waited for the next utterance or for close()).
    for arrived, final in events:
        if final.is_final and final.end < len(pcm) / BYTES_PER_SECOND - 1.0:
            assert arrived - final.end < 3.0, (arrived, final)


@pytest.mark.asyncio
async def test_streams_share_one_decoder_and_get_distinct_utterance_ids(speech_pcm: bytes) -> None:
    clip = speech_pcm[: 8 * BYTES_PER_SECOND]
    first, second = LocalSttStream(languages=["en"]), LocalSttStream(languages=["en"])
    one, two = await asyncio.gather(transcribe(clip, first), transcribe(clip, second))
    assert first._pool is second._pool
    assert len(first._pool.pids) == 1, "one model per process, however many streams"
    one_ids = {e.utterance_id for _, e in one}
    two_ids = {e.utterance_id for _, e in two}
    assert one_ids and two_ids
    assert not one_ids & two_ids
    # Same audio, same model, deterministic decoding: the same words.
    assert [e.text for e in finals_of(one)] == [e.text for e in finals_of(two)]


@pytest.mark.asyncio
async def test_silence_makes_no_events_and_close_ends_events() -> None:
    assert await transcribe(bytes(2 * BYTES_PER_SECOND)) == []


@pytest.mark.asyncio
async def test_noise_is_not_transcribed() -> None:
    noise = (np.random.default_rng(7).normal(0, 300, 3 * 16000)).astype("<i2").tobytes()
    assert finals_of(await transcribe(noise)) == []


@pytest.mark.asyncio
async def test_close_flushes_speech_cut_off_mid_utterance(speech_pcm: bytes) -> None:
    # 3.0 s ends inside the first sentence: the flush must still produce its final.
    finals = finals_of(await transcribe(speech_pcm[: 3 * BYTES_PER_SECOND]))
    assert len(finals) == 1
    assert finals[0].end <= 3.0 + 0.01
    assert "best" in finals[0].text


@pytest.mark.asyncio
@pytest.mark.parametrize("tail_bytes", [2, 322, 958])
async def test_stream_closed_mid_word_with_a_frame_fragment_still_ends_with_a_final(
    speech_pcm: bytes, tail_bytes: int
) -> None:
    # Stop while someone speaks, with a remainder shorter than one VAD frame (512 samples):
    # the engine must close the utterance, not crash on the fragment.
    cut = 3 * BYTES_PER_SECOND + tail_bytes
    finals = finals_of(await transcribe(speech_pcm[:cut]))
    assert finals, "the open utterance is finalised at close"
    assert finals[-1].end <= cut / BYTES_PER_SECOND + 0.01


@pytest.mark.asyncio
async def test_decoding_does_not_stall_the_event_loop(speech_pcm: bytes) -> None:
    worst = 0.0
    running = True

    async def heartbeat() -> None:
        nonlocal worst
        while running:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - before - 0.005)

    beat = asyncio.create_task(heartbeat())
    await transcribe(speech_pcm[: 6 * BYTES_PER_SECOND])
    running = False
    await beat
    # Loading or running Whisper in this process would freeze the loop for 0.3-1 s; only
    # the VAD (~0.1 ms a call) runs here.
    assert worst < 0.25, f"event loop stalled for {worst:.3f} s"


@pytest.mark.asyncio
async def test_audio_seconds_counts_accepted_audio() -> None:
    stream = open_stream("local", languages=["en"])
    await stream.start()
    await stream.send_audio(bytes(16000))
    await stream.send_audio(bytes(16000))
    assert stream.audio_seconds == pytest.approx(1.0)
    await stream.close()
    with pytest.raises(RuntimeError):
        await stream.send_audio(bytes(320))


def test_open_stream_takes_the_offline_settings(settings) -> None:
    settings.OFFLINE_STT_PARTIAL_SECONDS = 0.0
    settings.OFFLINE_STT_MIN_WINDOW_SECONDS = 30.0
    settings.OFFLINE_STT_MAX_UTTERANCE_SECONDS = 12.0
    stream = open_stream("local", languages=["en"])
    assert isinstance(stream, LocalSttStream)
    assert stream.partial_seconds == 0.0
    assert stream.min_window_seconds == 30.0
    assert stream.max_utterance_seconds == 12.0
    assert stream.model_dir is None  # blank setting: the packaged tiny.en


@pytest.mark.asyncio
async def test_decoder_killed_mid_session_is_restarted_and_loses_nothing(
    speech_pcm: bytes,
) -> None:
    stream = LocalSttStream(languages=["en"])
    await stream.start()
    pool = stream._pool
    assert pool is not None
    restarts = pool.restarts
    os.kill(pool.pids[0], signal.SIGKILL)
    finals = finals_of(await transcribe(speech_pcm[: 5 * BYTES_PER_SECOND], stream, start=False))
    assert pool.restarts == restarts + 1
    assert "best of times" in " ".join(e.text for e in finals)


# A stand-in decoder that starts, then dies on every job (a model that crashes on this
# audio, or a machine killing it): the stream must fail as a provider error, not hang.
CRASHING_DECODER = """
import json, sys
print(json.dumps({"ready": True, "multilingual": False}), flush=True)
header = sys.stdin.buffer.readline()
sys.exit(3)
"""

# A stand-in decoder that never answers (hung): its jobs time out.
HUNG_DECODER = """
import json, sys, time
print(json.dumps({"ready": True, "multilingual": False}), flush=True)
time.sleep(600)
"""


def stand_in_pool(monkeypatch, script: str, **options) -> DecoderPool:
    argv = [sys.executable, "-c", script]
    pool = DecoderPool(model_dir=default_model_dir(), argv=argv, **options)
    monkeypatch.setattr(local_module, "get_pool", lambda **_: pool)
    return pool


@pytest.mark.asyncio
async def test_decoder_failing_on_the_same_audio_twice_is_a_provider_error(
    monkeypatch, speech_pcm: bytes
) -> None:
    pool = stand_in_pool(monkeypatch, CRASHING_DECODER)
    try:
        stream = LocalSttStream(languages=["en"])
        await stream.start()
        with pytest.raises(SttError) as caught:
            await transcribe(speech_pcm[: 3 * BYTES_PER_SECOND], stream, start=False)
        assert caught.value.code == "provider"
        with pytest.raises(SttError):
            await stream.send_audio(bytes(320))
        assert pool.restarts >= 1, "it was tried again on a fresh decoder first"
    finally:
        pool.close()


@pytest.mark.asyncio
async def test_a_hung_decoder_bounds_the_backlog_and_ends_in_a_provider_error(
    monkeypatch, speech_pcm: bytes
) -> None:
    pool = stand_in_pool(monkeypatch, HUNG_DECODER, job_timeout=1.0)
    # Short utterances with pauses: each ends, and its final waits on the hung decoder.
    phrase = speech_pcm[int(1.2 * BYTES_PER_SECOND) : int(2.9 * BYTES_PER_SECOND)]
    pcm = (phrase + bytes(BYTES_PER_SECOND)) * 4
    try:
        stream = LocalSttStream(languages=["en"], max_backlog_seconds=1.0)
        await stream.start()
        for offset in range(0, len(pcm), CHUNK_BYTES):
            await stream.send_audio(pcm[offset : offset + CHUNK_BYTES])
        assert stream.dropped_audio_seconds > 0, "audio past the backlog bound is dropped"
        assert stream.audio_seconds == pytest.approx(len(pcm) / BYTES_PER_SECOND)
        await asyncio.wait_for(stream.close(), timeout=30)
        with pytest.raises(SttError):
            async for _ in stream.events():
                pass
    finally:
        pool.close()


@pytest.mark.asyncio
async def test_missing_model_directory_fails_start_without_downloading(tmp_path) -> None:
    (tmp_path / "config.json").write_text("{}")
    stream = LocalSttStream(languages=["en"], model_dir=str(tmp_path))
    with pytest.raises(SttError) as caught:
        await stream.start()
    assert caught.value.code == "provider"
    await stream.close()


def test_unknown_provider_is_rejected() -> None:
    with pytest.raises(ValueError):
        open_stream("whisper", languages=[])


def test_get_pool_returns_one_pool_per_model_and_process() -> None:
    model_dir = default_model_dir()
    assert get_pool(model_dir=model_dir) is get_pool(model_dir=model_dir)
    assert get_pool(model_dir=model_dir) is not get_pool(model_dir=model_dir, workers=2)
