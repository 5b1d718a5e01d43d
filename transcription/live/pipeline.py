"""The per-run transcription pipeline, independent of where the audio comes from.

    source (PCM16LE 16 kHz mono) -> STT stream -> speaker attribution
        -> broadcast partials and finals to the session group -> batched upsert of finals
        -> usage meter
    finals -> translations into the listeners' caption languages (the stream's own, or the
        LLM's) -> broadcast, batched upsert, translation meter (``transcription.live.translate``)

One ``RunPipeline`` runs in one event loop (a Daphne process in embedded mode, a Celery ingest
worker in distributed mode). It listens on its own channel-layer channel for audio frames,
active-speaker reports and the stop signal, and on stop drains the
STT stream, flushes every final and finalises the usage row before it returns. Database writes
of all runs in a process are batched by ``transcription.live.batching.RunBatcher``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Iterable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from rooms import logging_setup, metrics
from transcription.live import broadcast, local, store
from transcription.live.attribution import SpeakerTimeline
from transcription.live.audio import Mixer, MixerBank, MixTick
from transcription.live.batching import RunBatcher
from transcription.live.ingest import BYTES_PER_SECOND, RtmpIngest
from transcription.live.server_source import ServerSourceMixin, SourceFailure
from transcription.live.store import FinalSegment
from transcription.live.stt import SttError, SttEvent, SttStream, SttTranslation, open_stream
from transcription.live.ticker import Ticker
from transcription.live.translate import CaptionsMixin
from transcription.models import TranscriptionRun
from transcription.usage import limits, metering
from transcription.usage.metering import UsageCounters

logger = logging.getLogger(__name__)
S = TranscriptionRun.Status


def stream_for(run: TranscriptionRun, translation_languages: Iterable[str] = ()) -> SttStream:
    """The STT stream a run uses, from settings (the provider is recorded on the run);
    ``translation_languages``: the first targets of a stream that translates."""
    if run.provider == "gladia":
        return open_stream(
            "gladia",
            languages=list(run.languages),
            translation_languages=translation_languages,
            api_key=settings.GLADIA_API_KEY,
            api_url=settings.GLADIA_API_URL,
        )
    return open_stream(
        run.provider, languages=list(run.languages), translation_languages=translation_languages
    )


def _loop_bank() -> MixerBank | None:
    """The running loop's mixer bank; None (a bank of the mixer's own) outside a loop."""
    try:
        return MixerBank.current()
    except RuntimeError:
        return None


class RunPipeline(CaptionsMixin, ServerSourceMixin):
    """Runs one TranscriptionRun until it is stopped or fails. Use ``await run()`` once."""

    def __init__(self, run: TranscriptionRun, *, stream: SttStream | None = None) -> None:
        self.run_id = run.pk
        self.session_id = run.session_id
        self.slug = run.session.slug
        self.mode = run.mode
        self._run = run
        self._stream = stream
        self.timeline = SpeakerTimeline()
        self.names: dict[str, str] = {}
        self.counters = UsageCounters()
        self.batcher: RunBatcher | None = None
        self.ingest: RtmpIngest | None = None
        self.egress_id = ""
        self._stream_live: SttStream | None = None
        self.tick_error: BaseException | None = None
        self._reconnect_base = 0
        self.mixer = Mixer(
            tick_seconds=settings.TRANSCRIPTION_TICK_SECONDS,
            jitter_seconds=settings.TRANSCRIPTION_JITTER_SECONDS,
            bank=_loop_bank(),
        )
        self.stop_requested = asyncio.Event()
        # Limits (``transcription.usage.limits``), refreshed by the batcher with each checkpoint.
        self.max_bytes: int | None = None
        self.max_senders = settings.TRANSCRIPTION_MAX_AUDIO_SENDERS
        self.budget_message = ""
        self.limit_message = ""
        self.refused_senders: set[str] = set()
        # Set by ``hand_off``: this process is shutting down while the session goes on.
        self.handing_off = False
        self.channel = ""
        self._tasks: set[asyncio.Task[None]] = set()
        # Session time (seconds since the session started) of stream time 0.
        self.offset = 0.0
        self._log_extra = {"session": self.slug, "run": self.run_id}
        self.captions_init(run)

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        # Every line this run's tasks log names its session and run.
        logging_setup.bind(session=self.slug, run=self.run_id)
        self.channel = await get_channel_layer().new_channel("transcription.run.")
        # Sockets on this loop hand their frames over directly (``transcription.live.local``).
        local.register(self.channel, self.on_message)
        try:
            await self._attached()
        finally:
            local.unregister(self.channel)
            self.mixer.close()  # its rows in the loop's mixer bank

    async def _attached(self) -> None:
        run = await database_sync_to_async(store.run_attach)(
            run_id=self.run_id, control_channel=self.channel
        )
        if run is None:
            logger.info("run %s is finished or held by another runner; nothing to do", self.run_id)
            return
        self._run = run
        try:
            targets = await self.captions_resume()
            stream = self._stream or stream_for(run, targets)
            await self.captions_stream(stream, targets)
            await stream.start()
        except SttError as exc:
            logger.warning("run %s: provider refused to start: %s", self.run_id, exc.message)
            await self._finish(error_code=exc.code, error=exc.message)
            return
        except Exception as exc:
            logger.exception("run %s: provider failed to start", self.run_id)
            await self._finish(error_code="provider", error=f"Transcription failed to start: {exc}")
            return

        now = timezone.now()
        self.counters = await database_sync_to_async(metering.usage_baseline)(run_id=self.run_id)
        budgets = await database_sync_to_async(limits.runs_budget)(run_ids=[self.run_id])
        self.on_budget(budgets.get(self.run_id))
        self._reconnect_base = self.counters.reconnect_count
        session_started = run.session.started_at or now
        self.offset = max(0.0, (now - session_started).total_seconds())
        if not await database_sync_to_async(store.run_activate)(
            run_id=self.run_id, control_channel=self.channel, started_at=now
        ):
            # Stopped between launch and start: close the provider, settle the meter.
            await stream.close()
            await self._finish()
            return
        self._run = await database_sync_to_async(self._load_run)()
        self.batcher = RunBatcher.current()
        self.batcher.register(self)
        await self.captions_started()
        await broadcast.send_status(self.session_id, self._run, self.captions())
        logger.info("run %s active (mode %s, provider %s)", self.run_id, self.mode, run.provider)

        error_code, error = "", ""
        events_task = asyncio.create_task(self._events_loop(stream))
        workers = [asyncio.create_task(self._receive_loop())]
        self._stream_live = stream
        ticker = Ticker.current()
        if self.mode == TranscriptionRun.Mode.SERVER:
            workers.append(asyncio.create_task(self._server_source(run, stream)))
        else:
            ticker.add(self)
        stop_wait = asyncio.create_task(self.stop_requested.wait())
        done, _ = await asyncio.wait(
            {events_task, stop_wait, *workers}, return_when=asyncio.FIRST_COMPLETED
        )
        if events_task in done and events_task.exception() is not None:
            exc = events_task.exception()
            if isinstance(exc, SttError):
                error_code, error = exc.code, exc.message
            else:
                error_code, error = "provider", f"Transcription failed: {exc}"
            logger.warning("run %s: stream failed: %s", self.run_id, error)
        for task in workers:
            failure = task.exception() if task in done else None
            if failure is None or error_code:
                continue
            if isinstance(failure, SourceFailure):
                error_code, error = failure.code, failure.message
                logger.warning("run %s: %s", self.run_id, error)
            else:
                error_code, error = "internal", f"Transcription failed: {failure}"
                logger.error("run %s: worker failed", self.run_id, exc_info=failure)
        ticker.discard(self)
        if self.tick_error is not None and not error_code:
            error_code, error = "internal", f"Transcription failed: {self.tick_error}"
            logger.error("run %s: tick failed", self.run_id, exc_info=self.tick_error)
        if self.limit_message and not error_code:
            error_code, error = limits.LIMIT_REACHED, self.limit_message
            logger.info("run %s: %s", self.run_id, error)
        for task in workers:
            task.cancel()
        stop_wait.cancel()
        await asyncio.gather(*workers, stop_wait, return_exceptions=True)

        await self._stop_server_source(keep_egress=self.handing_off and not error_code)
        # Drain: the provider transcribes what it has and emits its last finals.
        await stream.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(events_task, timeout=settings.TRANSCRIPTION_DRAIN_SECONDS)
        if not events_task.done():
            events_task.cancel()
        await self.captions_close()
        self.counters.reconnect_count = self._reconnect_base + stream.reconnects
        await self._settle(error_code=error_code, error=error)

    def _load_run(self) -> TranscriptionRun:
        return TranscriptionRun.objects.select_related("session").get(pk=self.run_id)

    def on_status(self, status: str | None) -> None:
        """Heartbeat feedback from the batcher: a run stopped elsewhere stops here too."""
        if status != S.ACTIVE:
            self.stop_requested.set()

    def on_budget(self, budget: limits.RunBudget | None) -> None:
        """The run's limits, at activation and after each usage checkpoint (None: run gone)."""
        if budget is None:
            return
        self.max_bytes = budget.max_bytes
        self.budget_message = budget.message
        self.max_senders = budget.max_audio_senders

    def _within_budget(self, pcm: bytes) -> bytes:
        """``pcm`` cut to what the run's minute budget still allows (a bytes comparison per
        chunk, no database work); reaching the budget stops the run with ``limit_reached``."""
        if self.max_bytes is None:
            return pcm
        left = self.max_bytes - self.counters.audio_bytes
        if left >= len(pcm):
            return pcm
        self.limit_message = self.budget_message
        self.stop_requested.set()
        return pcm[: max(0, left) & ~1]

    def hand_off(self) -> None:
        """This process is shutting down (SIGTERM): drain the provider, store every final and
        the meter, then leave the run STARTING for another runner (``run_hand_off``) — not
        STOPPED, since its session goes on."""
        self.handing_off = True
        self.stop_requested.set()

    async def _settle(self, *, error_code: str, error: str) -> None:
        """Store the last finals (retrying through a database blip), then close the meter."""
        assert self.batcher is not None
        self.batcher.unregister(self)
        deadline = time.monotonic() + settings.TRANSCRIPTION_DRAIN_SECONDS
        while self.batcher.has_pending(self.run_id):
            if await self.batcher.flush():
                continue
            if time.monotonic() > deadline:
                logger.error("run %s: finals could not be stored before the deadline", self.run_id)
                break
            await asyncio.sleep(0.5)
        async with self.batcher.usage_lock:
            try:
                await self.batcher.checkpoint([self])
            except Exception:
                logger.exception("run %s: last usage checkpoint failed", self.run_id)
            if self.handing_off and not error_code and await self._hand_off_run():
                return
            await self._finish(error_code=error_code, error=error)

    async def _hand_off_run(self) -> bool:
        """Leave the run to the next runner; False when it was stopped meanwhile."""
        try:
            run = await database_sync_to_async(store.run_hand_off)(
                run_id=self.run_id, control_channel=self.channel
            )
        except Exception:
            # The database is away: the supervisor restarts the run once its heartbeat is stale.
            logger.exception("run %s: hand-off failed; the supervisor takes over", self.run_id)
            return True
        if run is None:
            return False
        await broadcast.send_status(self.session_id, run, self.captions())
        logger.info("run %s handed off: this process is shutting down", self.run_id)
        return True

    async def _finish(self, *, error_code: str = "", error: str = "") -> None:
        if error_code:
            metrics.error(f"run_{error_code}")
        run = await database_sync_to_async(store.run_finish)(
            run_id=self.run_id, control_channel=self.channel, error_code=error_code, error=error
        )
        await broadcast.send_status(self.session_id, run, self.captions())
        logger.info("run %s finished: %s %s", self.run_id, run.status, error)

    # --- loops ----------------------------------------------------------------------------

    def stream_time(self) -> float:
        """Seconds of audio given to the provider so far: the clock of event times."""
        return self._stream_live.audio_seconds if self._stream_live is not None else 0.0

    async def _receive_loop(self) -> None:
        """Messages that come through the channel layer (from other processes or loops; a socket
        on this run's own loop calls ``on_message`` directly: ``transcription.live.local``)."""
        layer = get_channel_layer()
        while True:
            try:
                message: dict[str, Any] = await layer.receive(self.channel)
            except Exception:
                # Redis is away (restarting): the layer reconnects; what was sent meanwhile
                # (audio frames, speaker reports) is lost, a stop still comes by heartbeat.
                logger.warning("run %s: control channel unavailable; retrying", self.run_id)
                await asyncio.sleep(0.5)
                continue
            self.on_message(message)

    def on_message(self, message: dict[str, Any]) -> None:
        """An audio frame, speaker report or control message for this run (never awaits: a
        socket on the same loop calls it for each frame)."""
        kind = message.get("type")
        if kind == "audio.frame":
            source = str(message.get("source", ""))
            pcm = message.get("pcm")
            if not source or not isinstance(pcm, bytes | bytearray):
                return
            if source not in self.mixer.sources and len(self.mixer.sources) >= self.max_senders:
                if source not in self.refused_senders:
                    self.refused_senders.add(source)
                    self._background(
                        self._refuse_sender(source, str(message.get("name") or source))
                    )
                return
            self.names[source] = str(message.get("name") or source)[:120]
            self.mixer.push(source, bytes(pcm))
        elif kind == "audio.leave":
            self.mixer.remove(str(message.get("source", "")))
            self.refused_senders.discard(str(message.get("source", "")))
        elif kind == "speakers.active":
            self._on_active_speakers(message)
        elif kind == "run.stop":
            self.stop_requested.set()
        elif kind == "captions.changed":
            self.captions_nudged()

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refuse_sender(self, source: str, name: str) -> None:
        """Tell the session (once per sender: ``on_message``) that a microphone over the limit
        is not mixed."""
        error = {
            "type": "error",
            "code": "too_many_senders",
            "message": f"{name[:120]}'s microphone is not transcribed: this session "
            f"transcribes {self.max_senders} microphones at once. When someone leaves, the "
            "next microphone is transcribed.",
            # For the page to say it in its reader's language.
            "name": name[:120],
            "limit": self.max_senders,
        }
        try:
            await broadcast.send_transcript(self.session_id, error)
        except Exception:
            logger.warning("run %s: refusal of %s not broadcast", self.run_id, source)

    def _on_active_speakers(self, message: dict[str, Any]) -> None:
        speakers = [str(s) for s in message.get("speakers", [])][:50]
        for identity, name in (message.get("names") or {}).items():
            self.names[str(identity)] = str(name)[:120]
        at = float(message.get("at", time.time()))
        # Wall-clock report -> stream time, allowing for the egress delay in server mode.
        delay = settings.TRANSCRIPTION_EGRESS_DELAY_SECONDS if self.mode == "SERVER" else 0.0
        stream_at = self.stream_time() - (time.time() - at) + delay
        self.timeline.set_active_speakers(speakers, at=max(0.0, stream_at))

    async def on_tick(self, mixed: MixTick) -> None:
        """One tick of mixed audio to the provider (from the shared ``Ticker``)."""
        assert self._stream_live is not None
        tick = self.mixer.tick_seconds
        for source in mixed.active:
            self.timeline.add_activity(source, mixed.start, mixed.start + tick)
        pcm = self._within_budget(mixed.pcm)
        if not pcm:
            return
        await self._stream_live.send_audio(pcm)
        self.counters.audio_chunks += 1
        self.counters.audio_bytes += len(pcm)
        # From the integer byte count: adding float ticks drifts (8 h would bill 481 minutes).
        self.counters.audio_seconds = self.counters.audio_bytes / BYTES_PER_SECOND
        self.counters.reconnect_count = self._reconnect_base + self._stream_live.reconnects

    def on_tick_failed(self, exc: BaseException) -> None:
        self.tick_error = exc
        self.stop_requested.set()

    async def _events_loop(self, stream: SttStream) -> None:
        async for event in stream.events():
            if isinstance(event, SttTranslation):
                await self.on_translation(event, source="gladia")
            else:
                await self._on_event(event)

    async def _on_event(self, event: SttEvent) -> None:
        speaker = self.timeline.attribute(event.start, event.end)
        if speaker and speaker not in self.names:
            # Server mode learns speakers from identities only: one lookup per new speaker.
            try:
                self.names[speaker] = await database_sync_to_async(store.participant_name)(
                    session_id=self.session_id, identity=speaker
                )
            except Exception:
                # The database is away: this final goes out unnamed, the next one asks again.
                logger.warning("run %s: no name for %s (database)", self.run_id, speaker)
        name = self.names.get(speaker) if speaker else None
        start = round(self.offset + event.start, 3)
        end = round(self.offset + max(event.end, event.start), 3)
        words = (
            [
                {
                    "text": w.text,
                    "start": round(self.offset + w.start, 3),
                    "end": round(self.offset + w.end, 3),
                    "confidence": round(w.confidence, 3),
                }
                for w in event.words
            ]
            if event.words
            else None
        )
        confidence = round(event.confidence, 3) if event.confidence is not None else None
        payload = {
            "type": "transcript",
            "utterance_id": event.utterance_id,
            "text": event.text,
            "is_final": event.is_final,
            "speaker_identity": speaker,
            "speaker_name": name,
            "start": start,
            "end": end,
            "language": event.language,
            "confidence": confidence,
            "words": words,
            "revision": 0,
        }
        if event.is_final:
            self.counters.final_count += 1
            assert self.batcher is not None
            self.batcher.add_final(
                FinalSegment(
                    session_id=self.session_id,
                    run_id=self.run_id,
                    utterance_id=event.utterance_id,
                    text=event.text,
                    language=event.language,
                    start_offset=start,
                    end_offset=end,
                    speaker_identity=speaker,
                    speaker_name=name,
                    confidence=confidence,
                    words=words,
                )
            )
            self.captions_final(event)
        else:
            self.counters.partial_count += 1
        try:
            await broadcast.send_transcript(self.session_id, payload)
        except Exception:
            # Redis is away: this event reaches no page live (finals are stored regardless and
            # come back in ``history``); the run goes on.
            logger.warning("run %s: transcript event not broadcast (channel layer)", self.run_id)
