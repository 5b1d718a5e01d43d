"""Offline speech-to-text with pocketsphinx's bundled en-us model.

The product's default engine when no Gladia key is configured: no network, no keys,
the model ships inside the ``pocketsphinx`` wheel.

Threading: pocketsphinx holds the GIL while it decodes (measured: several streams in
threads run no faster than one after the other), so a worker thread does not buy
parallelism, only short, bounded event-loop stalls. Each stream therefore owns one
worker thread fed by a queue; it loads the model, runs the endpointer and decoder in
30 ms frames (each call holds the GIL for ~5 ms, at most ~30 ms), and posts events
back to the loop. One process can carry a handful of local streams (real-time factor
~0.16 each on one core); more need more processes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import secrets
import threading
from collections.abc import Callable, Sequence

from pocketsphinx import Decoder, Endpointer, Vad, set_loglevel

from .base import END_OF_EVENTS, EventQueueItem, SttError, SttEvent, SttStream

logger = logging.getLogger(__name__)

SUPPORTED_SAMPLE_RATE = 16000
LANGUAGE = "en"


class _Flush:
    """Inbox sentinel: end of audio, flush the current utterance and stop."""


_FLUSH = _Flush()


class LocalSttStream(SttStream):
    """pocketsphinx decoding with voice-activity endpointing.

    A final is emitted at each endpoint (end of a speech region); partials are emitted
    while speech goes on, at most once per ``partial_interval`` seconds of speech and
    only when the hypothesis changed. ``start``/``end`` come from the endpointer, in
    seconds of audio since the first byte. Empty hypotheses produce no event. Only
    English is supported; other requested languages are transcribed as English.

    If the decoder falls more than ``max_backlog_seconds`` behind, new audio is dropped
    (counted in ``dropped_audio_seconds``) rather than letting memory grow without
    bound; event times after a drop lag the true stream time by the amount dropped.
    """

    def __init__(
        self,
        *,
        languages: Sequence[str] = (),
        sample_rate: int = SUPPORTED_SAMPLE_RATE,
        partial_interval: float = 0.25,
        max_backlog_seconds: float = 120.0,
    ) -> None:
        if sample_rate != SUPPORTED_SAMPLE_RATE:
            raise ValueError(f"the local engine needs {SUPPORTED_SAMPLE_RATE} Hz audio")
        super().__init__(sample_rate=sample_rate)
        if any(lang != LANGUAGE for lang in languages):
            logger.warning(
                "Local STT only understands English; transcribing %s as English",
                list(languages),
            )
        self.partial_interval = partial_interval
        self.dropped_audio_seconds = 0.0
        self._max_backlog_bytes = int(max_backlog_seconds * sample_rate * 2)
        # A random token per stream keeps ids unique across streams and restarts.
        self._id_prefix = "l" + secrets.token_hex(4)
        self._inbox: queue.SimpleQueue[bytes | _Flush] = queue.SimpleQueue()
        self._backlog_bytes = 0
        self._backlog_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._worker_done: asyncio.Future[None] | None = None
        self._closing = False
        self._closed = False
        self._failure: SttError | None = None

    async def start(self) -> None:
        """Start the worker thread and wait until it has loaded the model (~0.3 s).

        Raises :class:`SttError` (``"provider"``) if pocketsphinx cannot load.
        """
        if self._thread is not None:
            raise RuntimeError("start() was already called")
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._worker_done = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._work,
            args=(ready,),
            name=f"local-stt-{self._id_prefix}",
            daemon=True,  # a stream abandoned without close() must not block exit
        )
        self._thread.start()
        await ready

    async def send_audio(self, pcm: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        if self._thread is None or self._closing:
            raise RuntimeError("send_audio() needs a started, unclosed stream")
        if not pcm:
            return
        with self._backlog_lock:
            if self._backlog_bytes + len(pcm) > self._max_backlog_bytes:
                overflow = True
            else:
                overflow = False
                self._backlog_bytes += len(pcm)
        self._accepted_bytes += len(pcm)
        if overflow:
            if self.dropped_audio_seconds == 0.0:
                logger.warning("Local STT is falling behind real time; dropping audio")
            self.dropped_audio_seconds += len(pcm) / (2 * self.sample_rate)
            return
        self._inbox.put(bytes(pcm))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing = True
        if self._thread is None or self._worker_done is None:
            self._events.put_nowait(END_OF_EVENTS)
            return
        self._inbox.put(_FLUSH)
        # The worker posts END_OF_EVENTS (or the failure) itself once it has drained.
        await self._worker_done

    # --- worker thread -------------------------------------------------------------

    def _call_in_loop(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the event loop; safe from the worker thread."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError as exc:  # the loop is closed: the stream was abandoned
            raise _LoopGone from exc

    def _post(self, item: EventQueueItem) -> None:
        self._call_in_loop(functools.partial(self._events.put_nowait, item))

    def _settle(self, future: asyncio.Future[None], error: SttError | None = None) -> None:
        def settle() -> None:
            if future.done():
                return
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

        self._call_in_loop(settle)

    def _work(self, ready: asyncio.Future[None]) -> None:
        """Worker thread body: load the model, then decode the inbox in order."""
        assert self._worker_done is not None
        try:
            try:
                decoding = _Decoding(self)
            except Exception:
                logger.exception("Could not load the local speech model")
                self._failure = SttError("provider", "The local speech engine could not start")
                self._settle(ready, self._failure)
                self._post(END_OF_EVENTS)
                self._settle(self._worker_done)
                return
            self._settle(ready)
            try:
                decoding.run()
                self._post(END_OF_EVENTS)
            except _LoopGone:
                raise
            except Exception:
                logger.exception("Local speech decoding failed")
                self._failure = SttError("provider", "The local speech engine failed")
                self._post(self._failure)
            self._settle(self._worker_done)
        except _LoopGone:
            return

    def _next_chunk(self) -> bytes | None:
        """Block for the next inbox item; ``None`` means flush and stop."""
        item = self._inbox.get()
        if isinstance(item, _Flush):
            return None
        with self._backlog_lock:
            self._backlog_bytes -= len(item)
        return item


class _LoopGone(Exception):
    """The stream's event loop closed under the worker; nobody is listening."""


class _Decoding:
    """The worker thread's decoding state for one stream (never touched by the loop)."""

    def __init__(self, stream: LocalSttStream) -> None:
        """Load the model (~0.3 s): call this on the worker thread."""
        set_loglevel("FATAL")
        self.stream = stream
        # fwdflat off: that second pass runs inside end_utt() and held the GIL for
        # 0.1-0.2 s per utterance; without it the fixture's WER is unchanged.
        self.decoder = Decoder(samprate=SUPPORTED_SAMPLE_RATE, fwdflat=False)
        self.endpointer = Endpointer(
            window=0.3,
            ratio=0.9,
            vad_mode=Vad.LOOSE,
            sample_rate=SUPPORTED_SAMPLE_RATE,
            frame_length=0.03,
        )
        self.frame_bytes: int = endpointer.frame_bytes
        self.frame_seconds: float = endpointer.frame_length
        self.frames_done = 0
        self.counter = 0
        self.utterance_id: str | None = None
        self.speech_seconds = 0.0
        self.next_partial_at = 0.0
        self.last_partial = ""

    def run(self) -> None:
        pending = bytearray()
        while True:
            item = self.stream._next_chunk()
            if item is None:
                self.finish(bytes(pending))
                return
            pending += item
            usable = len(pending) - len(pending) % self.frame_bytes
            view = memoryview(pending)
            for offset in range(0, usable, self.frame_bytes):
                self.feed(bytes(view[offset : offset + self.frame_bytes]), last=False)
            view.release()
            del pending[:usable]

    def finish(self, tail: bytes) -> None:
        """End of stream: the endpointer closes any open speech region."""
        if tail or self.endpointer.in_speech:
            # end_stream() needs a non-empty buffer of at most one frame.
            self.feed(tail or b"\x00\x00", last=True)
        if self.utterance_id is not None:
            self.end_utterance()

    def feed(self, frame: bytes, *, last: bool) -> None:
        was_in_speech = self.endpointer.in_speech
        if last:
            speech = self.endpointer.end_stream(frame)
        else:
            speech = self.endpointer.process(frame)
        self.frames_done += 1
        if speech is None:
            return
        if not was_in_speech or self.utterance_id is None:
            self.begin_utterance()
        self.decoder.process_raw(speech, False, False)
        self.speech_seconds += len(speech) / (2 * self.stream.sample_rate)
        if not self.endpointer.in_speech:
            self.end_utterance()
        elif self.speech_seconds >= self.next_partial_at:
            self.next_partial_at = self.speech_seconds + self.stream.partial_interval
            self.emit_partial()

    def begin_utterance(self) -> None:
        self.counter += 1
        self.utterance_id = f"{self.stream._id_prefix}-{self.counter}"
        self.speech_seconds = 0.0
        self.next_partial_at = self.stream.partial_interval
        self.last_partial = ""
        self.decoder.start_utt()

    def emit_partial(self) -> None:
        hyp = self.decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        if not text or text == self.last_partial:
            return
        self.last_partial = text
        now = self.frames_done * self.frame_seconds
        self.emit(text, is_final=False, start=self.endpointer.speech_start, end=now)

    def end_utterance(self) -> None:
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        start = self.endpointer.speech_start
        end = max(self.endpointer.speech_end, start)
        if text:
            self.emit(text, is_final=True, start=start, end=end)
        self.utterance_id = None

    def emit(self, text: str, *, is_final: bool, start: float, end: float) -> None:
        assert self.utterance_id is not None
        self.stream._post(
            SttEvent(
                utterance_id=self.utterance_id,
                text=text,
                is_final=is_final,
                start=round(start, 3),
                end=round(end, 3),
                language=LANGUAGE,
            )
        )
