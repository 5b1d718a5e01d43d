"""The offline engine's streaming VAD and endpointer (transcription.live.stt.vad)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from transcription.live.stt.vad import FRAME_SAMPLES, Boundary, Change, Endpointer, SileroVad

SPEECH = Path(__file__).resolve().parents[2] / "fixtures" / "speech" / "two_cities_opening.flac"


@pytest.mark.parametrize("batch", [1, 3, 16])
def test_streaming_silero_gives_faster_whispers_whole_file_probabilities(batch: int) -> None:
    from faster_whisper.vad import get_vad_model

    audio, _ = soundfile.read(SPEECH, dtype="float32")
    frames = audio[: len(audio) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    expected = get_vad_model()(frames.reshape(-1)).reshape(-1)
    vad = SileroVad()
    streamed = np.concatenate(
        [vad.probabilities(frames[i : i + batch]) for i in range(0, len(frames), batch)]
    )
    np.testing.assert_allclose(streamed, expected, atol=1e-5)
    # The reading has speech and pauses, and the model tells them apart.
    assert (expected > 0.9).mean() > 0.5 and (expected < 0.1).mean() > 0.1


def feed(endpointer: Endpointer, probabilities: list[float]) -> list[Boundary]:
    return [b for p in probabilities for b in endpointer.feed(p)]


def frames_of(seconds: float) -> int:
    return round(seconds / (FRAME_SAMPLES / 16000))


def test_silence_ends_an_utterance_and_a_shorter_pause_does_not() -> None:
    endpointer = Endpointer(silence_seconds=0.6, pause_seconds=0.3)
    speech, pause, silence = [0.9] * 30, [0.05] * frames_of(0.35), [0.05] * frames_of(0.7)
    changes = feed(endpointer, [0.0] * 5 + speech + pause + speech + silence)
    kinds = [b.change for b in changes]
    assert kinds == [Change.START, Change.PAUSE, Change.RESUME, Change.PAUSE, Change.END]
    start, pause_at, _, _, end = changes
    assert start.start == 5
    assert pause_at.end == 35, "the pause starts at the first silent frame"
    assert (end.start, end.end) == (5, 35 + len(pause) + 30)


def test_hysteresis_keeps_an_utterance_through_middling_frames() -> None:
    endpointer = Endpointer(silence_seconds=0.2, pause_seconds=0.1)
    changes = feed(endpointer, [0.9] * 10 + [0.4] * 20 + [0.9] * 10 + [0.0] * 10)
    assert [b.change for b in changes] == [Change.START, Change.PAUSE, Change.END]
    assert changes[-1].end == 40


def test_a_blip_is_discarded() -> None:
    endpointer = Endpointer(min_speech_seconds=0.15, silence_seconds=0.3)
    changes = feed(endpointer, [0.0] * 3 + [0.9] * 2 + [0.0] * 20)
    assert [b.change for b in changes] == [Change.START, Change.DISCARD]


def test_a_long_utterance_ends_at_its_next_short_pause_after_the_maximum() -> None:
    endpointer = Endpointer(max_seconds=2.0, hard_max_seconds=4.0, silence_seconds=0.6)
    short_pause = [0.0] * frames_of(0.15)  # far shorter than the silence that ends speech
    changes = feed(endpointer, [0.9] * frames_of(1.5) + short_pause + [0.9] * frames_of(1.0))
    assert [b.change for b in changes] == [Change.START]  # before the maximum: no split
    changes = feed(endpointer, short_pause)
    assert [b.change for b in changes] == [Change.END]
    assert changes[0].end - changes[0].start == frames_of(1.5) + len(short_pause) + frames_of(1)


def test_speech_without_any_pause_is_cut_at_the_hard_maximum() -> None:
    endpointer = Endpointer(max_seconds=2.0, hard_max_seconds=3.0)
    changes = feed(endpointer, [0.9] * frames_of(5.0))
    ends = [b for b in changes if b.change is Change.END]
    assert len(ends) == 1 and ends[0].end - ends[0].start == frames_of(3.0)
    assert changes[-1].change is Change.START, "speech goes on in a new utterance"


def test_finish_closes_the_open_utterance_where_its_speech_ends() -> None:
    endpointer = Endpointer()
    feed(endpointer, [0.9] * 20 + [0.0] * 4)
    assert endpointer.finish() == [Boundary(Change.END, 0, 20)]
    assert endpointer.finish() == []
