"""The offline pocketsphinx engine, fed the shared speech fixture faster than real time."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile

from transcription.stt import SttError, SttEvent, open_stream
from transcription.stt.local import LocalSttStream

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "speech"
CHUNK_BYTES = 1280  # 40 ms of PCM16 at 16 kHz
CLIP_SECONDS = 20.5


def _reference() -> str:
    readme = (FIXTURES / "README.md").read_text()
    match = re.search(r"word-error-rate checks:\s*\n\s*\n\s+(.+)\n", readme)
    assert match, "reference transcript not found in the fixture README"
    return match.group(1).strip()


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


@pytest.fixture(scope="module")
def speech_pcm() -> bytes:
    samples, rate = soundfile.read(FIXTURES / "two_cities_opening.flac", dtype="int16")
    assert rate == 16000 and samples.ndim == 1
    return np.ascontiguousarray(samples).tobytes()


async def _transcribe(pcm: bytes, stream: LocalSttStream | None = None) -> list[SttEvent]:
    stream = stream or LocalSttStream(languages=["en"])
    await stream.start()
    events: list[SttEvent] = []

    async def collect() -> None:
        async for event in stream.events():
            events.append(event)

    collector = asyncio.create_task(collect())
    for offset in range(0, len(pcm), CHUNK_BYTES):
        await stream.send_audio(pcm[offset : offset + CHUNK_BYTES])
    await stream.close()
    # events() must end on its own once close() has drained.
    await asyncio.wait_for(collector, timeout=5)
    return events


@pytest.mark.asyncio
async def test_fixture_transcript_is_accurate_and_well_formed(speech_pcm: bytes) -> None:
    events = await _transcribe(speech_pcm)
    finals = [e for e in events if e.is_final]
    partials = [e for e in events if not e.is_final]

    hypothesis = _normalise(" ".join(e.text for e in finals))
    wer = jiwer.wer(_normalise(_reference()), hypothesis)
    assert wer <= 0.30, f"WER {wer:.3f}: {hypothesis!r}"

    assert len(finals) >= 2
    assert partials, "expected partials while speaking"
    first_final = events.index(finals[0])
    assert any(not e.is_final for e in events[:first_final]), "partials come before finals"

    for event in finals:
        assert 0 <= event.start < event.end <= CLIP_SECONDS + 0.1, event
        assert event.text.strip()
        assert event.language == "en"
    starts = [e.start for e in finals]
    assert starts == sorted(starts)

    final_ids = [e.utterance_id for e in finals]
    assert len(set(final_ids)) == len(final_ids)
    # Partials belong to the utterance they precede: their id is one of the finals'.
    assert {e.utterance_id for e in partials} <= set(final_ids)


@pytest.mark.asyncio
async def test_two_streams_get_distinct_utterance_ids(speech_pcm: bytes) -> None:
    clip = speech_pcm[: 16000 * 2 * 8]
    first, second = await asyncio.gather(_transcribe(clip), _transcribe(clip))
    first_ids = {e.utterance_id for e in first}
    second_ids = {e.utterance_id for e in second}
    assert first_ids and second_ids
    assert not first_ids & second_ids


@pytest.mark.asyncio
async def test_silence_makes_no_events_and_close_ends_events() -> None:
    events = await _transcribe(bytes(16000 * 2 * 2))
    assert events == []


@pytest.mark.asyncio
async def test_close_flushes_speech_cut_off_mid_utterance(speech_pcm: bytes) -> None:
    # 3.0 s ends inside the first sentence: the flush must still produce its final.
    events = await _transcribe(speech_pcm[: 16000 * 2 * 3])
    finals = [e for e in events if e.is_final]
    assert len(finals) == 1
    assert finals[0].end <= 3.0 + 0.05
    assert "best" in finals[0].text


@pytest.mark.asyncio
async def test_decoding_does_not_stall_the_event_loop(speech_pcm: bytes) -> None:
    stream = LocalSttStream(languages=["en"])
    worst = 0.0
    running = True

    async def heartbeat() -> None:
        nonlocal worst
        while running:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - before - 0.005)

    beat = asyncio.create_task(heartbeat())
    await _transcribe(speech_pcm[: 16000 * 2 * 6], stream)
    running = False
    await beat
    # pocketsphinx holds the GIL: loading (~0.4 s) or decoding in a thread of this
    # process would freeze the loop; the child process must leave it free.
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


@pytest.mark.asyncio
async def test_engine_crash_surfaces_as_provider_error() -> None:
    stream = LocalSttStream(languages=["en"])
    await stream.start()
    assert stream._process is not None
    stream._process.kill()
    with pytest.raises(SttError) as caught:
        async with asyncio.timeout(5):
            async for _ in stream.events():
                pass
    assert caught.value.code == "provider"
    with pytest.raises(SttError):
        await stream.send_audio(bytes(320))
    await stream.close()


def test_unknown_provider_is_rejected() -> None:
    with pytest.raises(ValueError):
        open_stream("whisper", languages=[])


@pytest.mark.asyncio
@pytest.mark.parametrize("tail_bytes", [0, 2, 10, 322, 958])
async def test_stream_closed_mid_word_with_a_frame_fragment_still_ends_with_a_final(
    speech_pcm: bytes, tail_bytes: int
) -> None:
    # Stop while someone speaks, with a remainder shorter than one endpointer frame: the
    # engine must close the utterance, not crash on the fragment.
    cut = 16000 * 2 * 3 + tail_bytes  # 3 s into the first sentence, plus a fragment
    events = await _transcribe(speech_pcm[:cut])

    finals = [e for e in events if e.is_final]
    assert finals, "the open utterance is finalised at close"
    assert finals[-1].end <= cut / 32000 + 0.05
