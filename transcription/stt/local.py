"""Offline speech-to-text with pocketsphinx's bundled en-us model.

The product's default engine when no Gladia key is configured: no network, no keys,
the model ships inside the ``pocketsphinx`` wheel.

Each stream decodes in its own child process (this module run with ``-m``), not in a
thread: pocketsphinx holds the GIL while it works, so a thread would freeze the event
loop for the whole model load (~0.4 s, measured) and for every decoder call, and all
streams of a process would share one core. The child reads raw PCM on stdin and
writes one JSON line per event on stdout; end of stdin means "flush and exit".
Plain pipes rather than ``multiprocessing`` because Celery's prefork workers are
daemonic processes, which ``multiprocessing`` refuses to give children.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .base import END_OF_EVENTS, SttError, SttEvent, SttStream

logger = logging.getLogger(__name__)

SUPPORTED_SAMPLE_RATE = 16000
# pocketsphinx's feature extraction needs at least a frame's worth of samples (10 ms here).
MIN_DECODE_BYTES = 320
LANGUAGE = "en"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class LocalSttStream(SttStream):
    """pocketsphinx decoding with voice-activity endpointing, in a child process.

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
        start_timeout: float = 30.0,
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
        self.start_timeout = start_timeout
        self.dropped_audio_seconds = 0.0
        self._max_backlog_bytes = int(max_backlog_seconds * sample_rate * 2)
        # A random token per stream keeps ids unique across streams and restarts.
        self._id_prefix = "l" + secrets.token_hex(4)
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stderr_tail = b""
        self._stderr_reader: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._failure: SttError | None = None

    async def start(self) -> None:
        """Spawn the decoder process and wait until its model is loaded (~0.5 s).

        Raises :class:`SttError` (``"provider"``) if it cannot start.
        """
        if self._process is not None:
            raise RuntimeError("start() was already called")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                str(self.partial_interval),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            logger.error("Could not spawn the local speech engine: %s", exc)
            raise SttError("provider", "The local speech engine could not start") from exc
        assert self._process.stdout is not None and self._process.stderr is not None
        self._stderr_reader = asyncio.create_task(self._collect_stderr(self._process.stderr))
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), self.start_timeout)
            ready = json.loads(line) if line else {}
        except (TimeoutError, ValueError):
            ready = {}
        except BaseException:  # cancelled: leave no orphan behind
            await asyncio.shield(self._kill())
            raise
        if not ready.get("ready"):
            await self._kill()
            logger.error("Local speech engine failed to start: %s", self._stderr_text())
            raise SttError("provider", "The local speech engine could not start")
        self._reader = asyncio.create_task(self._read_events(self._process.stdout))

    async def send_audio(self, pcm: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        if self._process is None or self._closing:
            raise RuntimeError("send_audio() needs a started, unclosed stream")
        if not pcm:
            return
        self._accepted_bytes += len(pcm)
        stdin = self._process.stdin
        assert stdin is not None
        # The pipe's write buffer is the decoder's backlog: writing never blocks.
        if stdin.transport.get_write_buffer_size() + len(pcm) > self._max_backlog_bytes:
            if self.dropped_audio_seconds == 0.0:
                logger.warning("Local STT is falling behind real time; dropping audio")
            self.dropped_audio_seconds += len(pcm) / (2 * self.sample_rate)
            return
        with contextlib.suppress(ConnectionError):  # a dead child is reported by the reader
            stdin.write(pcm)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing = True
        if self._process is None or self._reader is None:
            self._events.put_nowait(END_OF_EVENTS)
            return
        assert self._process.stdin is not None
        with contextlib.suppress(ConnectionError):
            await self._process.stdin.drain()
            self._process.stdin.close()  # EOF: the child flushes its last utterance and exits
        # The reader posts the remaining events, then END_OF_EVENTS or the failure.
        await self._reader
        await self._process.wait()
        if self._stderr_reader is not None:
            await self._stderr_reader

    async def _read_events(self, stdout: asyncio.StreamReader) -> None:
        while line := await stdout.readline():
            try:
                message = json.loads(line)
                event = SttEvent(
                    utterance_id=f"{self._id_prefix}-{message['n']}",
                    text=message["text"],
                    is_final=message["final"],
                    start=message["start"],
                    end=message["end"],
                    language=LANGUAGE,
                )
            except (ValueError, KeyError, TypeError):
                logger.warning("Ignoring unexpected local engine output: %r", line[:200])
                continue
            self._events.put_nowait(event)
        assert self._process is not None
        code = await self._process.wait()
        if code == 0 and self._closing:
            self._events.put_nowait(END_OF_EVENTS)
            return
        if self._stderr_reader is not None:
            await self._stderr_reader
        logger.error("Local speech engine exited with %s: %s", code, self._stderr_text())
        self._failure = SttError("provider", "The local speech engine stopped unexpectedly")
        self._events.put_nowait(self._failure)

    async def _collect_stderr(self, stderr: asyncio.StreamReader) -> None:
        while chunk := await stderr.read(4096):
            self._stderr_tail = (self._stderr_tail + chunk)[-4096:]

    def _stderr_text(self) -> str:
        return self._stderr_tail.decode(errors="replace").strip() or "(no output)"

    async def _kill(self) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()
        await self._process.wait()
        if self._stderr_reader is not None:
            await self._stderr_reader


# --- the child process --------------------------------------------------------------


class _Decoding:
    """Endpointing + decoding state for one stream; runs in the child process."""

    def __init__(self, *, partial_interval: float, emit: Callable[[dict[str, Any]], None]) -> None:
        from pocketsphinx import Decoder, Endpointer, Vad, set_loglevel

        set_loglevel("FATAL")
        self.partial_interval = partial_interval
        self.emit_message = emit
        # fwdflat off: that second pass runs inside end_utt() and took 0.1-0.2 s per
        # utterance, delaying every final; without it the fixture's WER is unchanged.
        self.decoder = Decoder(samprate=SUPPORTED_SAMPLE_RATE, fwdflat=False)
        self.endpointer = Endpointer(
            window=0.3,
            ratio=0.9,
            vad_mode=Vad.LOOSE,
            sample_rate=SUPPORTED_SAMPLE_RATE,
            frame_length=0.03,
        )
        self.frame_bytes: int = self.endpointer.frame_bytes
        self.frame_seconds: float = self.endpointer.frame_length
        self.frames_done = 0
        self.counter = 0
        self.in_utterance = False
        self.speech_seconds = 0.0
        self.next_partial_at = 0.0
        self.last_partial = ""
        self.pending = bytearray()

    def feed_chunk(self, chunk: bytes) -> None:
        """Add PCM of any length; whole frames are decoded now, the rest kept."""
        self.pending += chunk
        usable = len(self.pending) - len(self.pending) % self.frame_bytes
        with memoryview(self.pending) as view:
            for offset in range(0, usable, self.frame_bytes):
                self.feed_frame(bytes(view[offset : offset + self.frame_bytes]), last=False)
        del self.pending[:usable]

    def finish(self) -> None:
        """End of stream: the endpointer closes any open speech region."""
        if self.pending or self.endpointer.in_speech:
            # end_stream() takes at most one frame; pad the remainder with silence to a whole
            # frame, since pocketsphinx's process_raw fails on a fragment of a frame.
            tail = bytes(self.pending).ljust(self.frame_bytes, b"\x00")
            self.feed_frame(tail, last=True)
        if self.in_utterance:
            self.end_utterance()

    def feed_frame(self, frame: bytes, *, last: bool) -> None:
        was_in_speech = self.endpointer.in_speech
        speech = self.endpointer.end_stream(frame) if last else self.endpointer.process(frame)
        self.frames_done += 1
        if speech is None:
            return
        if not was_in_speech or not self.in_utterance:
            self.begin_utterance()
        if len(speech) >= MIN_DECODE_BYTES:
            self.decoder.process_raw(speech, False, False)
        self.speech_seconds += len(speech) / (2 * SUPPORTED_SAMPLE_RATE)
        if not self.endpointer.in_speech:
            self.end_utterance()
        elif self.speech_seconds >= self.next_partial_at:
            self.next_partial_at = self.speech_seconds + self.partial_interval
            self.emit_partial()

    def begin_utterance(self) -> None:
        if self.in_utterance:
            self.end_utterance()
        self.counter += 1
        self.in_utterance = True
        self.speech_seconds = 0.0
        self.next_partial_at = self.partial_interval
        self.last_partial = ""
        self.decoder.start_utt()

    def emit_partial(self) -> None:
        text = self.hypothesis()
        if not text or text == self.last_partial:
            return
        self.last_partial = text
        now = self.frames_done * self.frame_seconds
        self.emit(text, final=False, start=self.endpointer.speech_start, end=now)

    def end_utterance(self) -> None:
        self.decoder.end_utt()
        self.in_utterance = False
        text = self.hypothesis()
        if text:
            start = self.endpointer.speech_start
            self.emit(text, final=True, start=start, end=max(self.endpointer.speech_end, start))

    def hypothesis(self) -> str:
        hyp = self.decoder.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""

    def emit(self, text: str, *, final: bool, start: float, end: float) -> None:
        self.emit_message(
            {
                "n": self.counter,
                "text": text,
                "final": final,
                "start": round(start, 3),
                "end": round(end, 3),
            }
        )


def _child_main(argv: list[str]) -> int:
    """Decode stdin (PCM16LE 16 kHz mono) until EOF, writing JSON lines to stdout."""
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when
    # this child ends (by closing stdin), so its own interrupt would only lose finals.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    partial_interval = float(argv[0]) if argv else 0.25
    out = sys.stdout.buffer
    stdin = sys.stdin.buffer

    def emit(message: dict[str, Any]) -> None:
        out.write(json.dumps(message).encode() + b"\n")
        out.flush()

    decoding = _Decoding(partial_interval=partial_interval, emit=emit)
    emit({"ready": True})
    while chunk := stdin.read1(65536):
        decoding.feed_chunk(chunk)
    decoding.finish()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
