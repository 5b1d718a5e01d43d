"""The Whisper decoder of the offline engine, loaded in this process (whisper_worker._Decoder)."""

from __future__ import annotations

import re
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile

from transcription.live.stt import whisper_worker
from transcription.live.stt.local import default_model_dir
from transcription.live.stt.whisper_worker import _Decoder, _loops, missing_model_files

SPEECH = Path(__file__).resolve().parents[2] / "fixtures" / "speech" / "two_cities_opening.flac"
# Phrases of the opening, cut at pauses (seconds): what the VAD hands the decoder.
PHRASES = [(0.9, 4.7), (4.9, 8.5), (8.7, 12.9), (13.2, 16.9), (17.3, 20.5)]


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


@pytest.fixture(scope="module")
def decoder() -> _Decoder:
    return _Decoder(model_dir=default_model_dir(), compute_type="int8", cpu_threads=1)


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    samples, _ = soundfile.read(SPEECH, dtype="float32")
    return samples


def phrase(audio: np.ndarray, start: float, end: float) -> np.ndarray:
    return audio[int(start * 16000) : int(end * 16000)]


def test_the_short_window_gives_nearly_the_words_of_the_full_window(decoder, audio) -> None:
    short_words, full_words = [], []
    for start, end in PHRASES:
        clip = phrase(audio, start, end)
        short = decoder.transcribe(clip, language=None, languages=[], min_window=10, words=False)
        full = decoder.transcribe(clip, language=None, languages=[], min_window=30, words=False)
        assert short["window"] == 10 and full["window"] == 30
        short_words += words(short["text"])
        full_words += words(full["text"])
    # Not always identical: here one word of 60 differs ("belief, that was" for "belief, it
    # was"); over 608 words of four recordings, 1.8 % (docs/benchmarks.md).
    assert jiwer.wer(" ".join(full_words), " ".join(short_words)) <= 0.05


def test_a_looping_decode_is_done_again_with_the_full_window(decoder, audio, monkeypatch) -> None:
    clip = phrase(audio, 0.0, 4.0)
    # A 5 s window for 4 s of speech makes tiny.en repeat itself (measured): the guard
    # must notice and decode with Whisper's own 30 s window.
    assert decoder._decode(clip, 5.0, language=None, languages=[])["suspicious"]
    monkeypatch.setattr(whisper_worker, "WINDOW_MARGIN", 1.0)
    answer = decoder.transcribe(clip, language=None, languages=[], min_window=1, words=False)
    assert answer["fallback"] and answer["window"] == 30
    assert words(answer["text"]) == words("It was the best of times, it was the worst of times.")


def test_silence_and_noise_give_no_text(decoder) -> None:
    silence = np.zeros(2 * 16000, dtype=np.float32)
    noise = np.random.default_rng(1).normal(0, 0.02, 2 * 16000).astype(np.float32)
    for clip in (silence, noise):
        answer = decoder.transcribe(clip, language=None, languages=[], min_window=10, words=True)
        assert answer["text"] == "" and answer["dropped"], answer
        assert answer["words"] == [] and answer["confidence"] is None


def test_words_are_timed_within_the_audio_and_the_confidence_is_their_mean(decoder, audio) -> None:
    clip = phrase(audio, *PHRASES[0])
    answer = decoder.transcribe(clip, language=None, languages=[], min_window=10, words=True)
    timed = answer["words"]
    assert [w[0] for w in timed] == answer["text"].split()
    starts = [w[1] for w in timed]
    assert starts == sorted(starts)
    assert all(0 <= s <= e <= len(clip) / 16000 for _, s, e, _ in timed)
    assert answer["confidence"] == pytest.approx(np.mean([w[3] for w in timed]), abs=1e-3)
    assert answer["language"] == "en"


def test_a_phrase_following_itself_looks_like_a_loop() -> None:
    assert _loops("Yes. Yes. Yes.")
    assert _loops("Do you hear me? Do you hear me?")
    assert _loops("we were all going direct the other way we were all going direct the other way")
    assert not _loops("No, no. Not now.")
    assert not _loops("It was the best of times, it was the worst of times.")


def test_a_model_directory_without_its_tokenizer_is_refused(tmp_path) -> None:
    # faster-whisper would fetch a missing tokenizer.json from a hub: never let it try.
    (tmp_path / "model.bin").write_bytes(b"")
    (tmp_path / "config.json").write_text("{}")
    assert missing_model_files(tmp_path) == ["tokenizer.json"]
    with pytest.raises(FileNotFoundError):
        _Decoder(model_dir=str(tmp_path), compute_type="int8", cpu_threads=1)
