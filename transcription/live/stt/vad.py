"""Streaming voice-activity detection for the offline engine.

:class:`SileroVad` runs the Silero VAD model that ships inside faster-whisper (ONNX, 32 ms
frames) frame by frame, carrying its recurrent state and its 64-sample context across
calls, so a stream gets exactly the probabilities faster-whisper computes over a whole
file (checked in the tests). It costs ~0.003 CPU-s per second of audio, runs in the
stream's own process, and loads onnxruntime there (~33 MB).

:class:`Endpointer` turns those probabilities into utterances: speech starts at a frame at
or above ``threshold``; once in speech, a frame below ``neg_threshold`` starts a silence
and one at or above ``threshold`` ends it (the hysteresis of Silero's own segmenter);
``silence_seconds`` of silence end the utterance. Utterances longer than
``max_seconds`` end at the next short pause, and at ``hard_max_seconds`` they are cut.
"""

from __future__ import annotations

import enum
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
FRAME_SAMPLES = 512
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
_CONTEXT_SAMPLES = 64
_STATE_SHAPE = (1, 1, 128)

_session: Any = None
_session_lock = threading.Lock()


def silero_model_path() -> Path:
    """The Silero VAD model inside the installed faster-whisper (found without importing
    faster-whisper, which would load CTranslate2 and PyAV into this process)."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("faster-whisper is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"


def load_model() -> Any:
    """The process's ONNX session (stateless: every stream passes its own state). Blocking
    (~50 ms the first time): call it off the event loop."""
    global _session
    with _session_lock:
        if _session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = 1
            options.enable_cpu_mem_arena = False
            options.log_severity_level = 4
            _session = onnxruntime.InferenceSession(
                str(silero_model_path()),
                providers=["CPUExecutionProvider"],
                sess_options=options,
            )
        return _session


class SileroVad:
    """Speech probabilities for consecutive 512-sample frames of one stream."""

    def __init__(self) -> None:
        self._session = load_model()
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(_CONTEXT_SAMPLES, dtype=np.float32)

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """``frames``: float32 ``(k, 512)`` in [-1, 1]; returns ``k`` probabilities."""
        if not len(frames):
            return np.zeros(0, dtype=np.float32)
        contexts = np.concatenate([self._context[np.newaxis], frames[:-1, -_CONTEXT_SAMPLES:]])
        batch = np.ascontiguousarray(np.concatenate([contexts, frames], axis=1), np.float32)
        probabilities, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = frames[-1, -_CONTEXT_SAMPLES:].copy()
        return np.asarray(probabilities, dtype=np.float32).reshape(-1)


class Change(enum.Enum):
    START = "start"
    """Speech began at ``start``."""
    PAUSE = "pause"
    """A silence of ``pause_seconds`` began at ``end``: the utterance may be over."""
    RESUME = "resume"
    """Speech came back after a ``PAUSE``."""
    END = "end"
    """The utterance ``[start, end)`` is over."""
    DISCARD = "discard"
    """The utterance was too short to be speech."""


@dataclass(frozen=True, slots=True)
class Boundary:
    """An endpointer change; ``start``/``end`` are frame indexes (``end`` exclusive)."""

    change: Change
    start: int
    end: int


class Endpointer:
    """Utterance boundaries from per-frame speech probabilities (see the module docstring)."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        neg_threshold: float = 0.35,
        silence_seconds: float = 0.6,
        pause_seconds: float = 0.3,
        min_speech_seconds: float = 0.15,
        max_seconds: float = 15.0,
        hard_max_seconds: float = 20.0,
        split_pause_seconds: float = 0.1,
    ) -> None:
        frames = lambda seconds: max(1, round(seconds / FRAME_SECONDS))  # noqa: E731
        self.threshold = threshold
        self.neg_threshold = neg_threshold
        self.silence_frames = frames(silence_seconds)
        self.pause_frames = min(frames(pause_seconds), self.silence_frames)
        self.min_speech_frames = frames(min_speech_seconds)
        self.max_frames = frames(max_seconds)
        self.hard_max_frames = max(self.max_frames, frames(hard_max_seconds))
        self.split_pause_frames = frames(split_pause_seconds)
        self.frame = 0
        self.in_speech = False
        self.start = 0
        self.silence_start: int | None = None
        self.paused = False

    def feed(self, probability: float) -> list[Boundary]:
        """Take the next frame's probability; return what changed."""
        index = self.frame
        self.frame += 1
        if not self.in_speech:
            if probability >= self.threshold:
                self.in_speech, self.start = True, index
                self.silence_start, self.paused = None, False
                return [Boundary(Change.START, index, index + 1)]
            return []
        changes: list[Boundary] = []
        if probability >= self.threshold:
            if self.silence_start is not None:
                self.silence_start = None
                if self.paused:
                    self.paused = False
                    changes.append(Boundary(Change.RESUME, self.start, self.frame))
        elif probability < self.neg_threshold and self.silence_start is None:
            self.silence_start = index
        silent = self.frame - self.silence_start if self.silence_start is not None else 0
        length = self.frame - self.start
        if silent >= self.silence_frames or (
            length >= self.max_frames and silent >= self.split_pause_frames
        ):
            assert self.silence_start is not None
            changes.append(self._end(self.silence_start))
        elif length >= self.hard_max_frames:
            changes.append(self._end(self.frame))
        elif silent >= self.pause_frames and not self.paused:
            assert self.silence_start is not None
            self.paused = True
            changes.append(Boundary(Change.PAUSE, self.start, self.silence_start))
        return changes

    def finish(self) -> list[Boundary]:
        """End of the stream: close the open utterance, if any."""
        if not self.in_speech:
            return []
        end = self.silence_start if self.silence_start is not None else self.frame
        return [self._end(end)]

    @property
    def speech_end(self) -> int:
        """Where the open utterance's speech ends so far (exclusive frame index)."""
        return self.silence_start if self.silence_start is not None else self.frame

    def _end(self, end: int) -> Boundary:
        self.in_speech = False
        self.silence_start, self.paused = None, False
        change = Change.END if end - self.start >= self.min_speech_frames else Change.DISCARD
        return Boundary(change, self.start, end)
