"""The database work of every run in one process, batched: finals, heartbeats, usage.

A process (a Daphne in embedded mode, an ingest worker) may run many pipelines in one event
loop. Writing each run's finals, heartbeat and meter on its own would cost several database
round-trips per run per second; instead one ``RunBatcher`` per event loop does, for all of them:

- one upsert of every pending final, every ``TRANSCRIPTION_FLUSH_SECONDS`` (or sooner when
  ``TRANSCRIPTION_FLUSH_MAX_SEGMENTS`` are waiting), then one of their pending translations
  (a translation whose final is not stored yet waits for a later round, at most
  ``TRANSLATION_MAX_WAIT_ROUNDS`` of them);
- one heartbeat UPDATE (and status read) every ``TRANSCRIPTION_HEARTBEAT_SECONDS``, which also
  tells each pipeline when its run was stopped elsewhere, and the caption languages of the
  people present in each run's session (one query for all);
- one usage checkpoint every ``TRANSCRIPTION_USAGE_CHECKPOINT_SECONDS`` (transcription and
  translation meters), after which each run learns its refreshed minute budget
  (``transcription.usage.limits.runs_budget``).

A failed write keeps its data and is retried on the next round, so a database outage delays
finals and metering but loses neither (up to ``TRANSCRIPTION_MAX_PENDING_FINALS`` buffered
finals). Every call goes through ``database_sync_to_async``, which runs Django's
``close_old_connections`` around it: a connection broken by the outage fails its "is usable"
check and is replaced on the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from rooms import logging_setup, metrics
from sessions_app.models import ACTIVITY_RESOLUTION
from transcription.live import store
from transcription.live.loops import PerLoop
from transcription.live.store import FinalSegment, FinalTranslation
from transcription.usage import limits, metering
from transcription.usage.metering import UsageCounters
from transcription.usage.translation_meter import TranslationCounts

logger = logging.getLogger(__name__)
ACTIVITY_EVERY = ACTIVITY_RESOLUTION.total_seconds()
TRANSLATION_MAX_WAIT_ROUNDS = 10
"""Flush rounds a translation waits for its final to be stored before it is dropped (a final
that was itself dropped, or never came)."""

TranslationKey = tuple[int, str, str]  # session id, utterance id, language
TranslationMeter = tuple[str, Mapping[str, TranslationCounts]]  # provider, totals per language


class BatchedRun(Protocol):
    run_id: int
    session_id: int
    # The runner's control channel: its writes land only while the run row still names it.
    channel: str
    counters: UsageCounters

    def on_status(self, status: str | None) -> None:
        """Told the run's status after each heartbeat (None: the run row is gone)."""

    def on_budget(self, budget: limits.RunBudget | None) -> None:
        """Told the run's limits after each usage checkpoint (None: the run row is gone)."""

    def on_captions(self, languages: set[str]) -> None:
        """Told, after each heartbeat, the caption languages of the people in its session."""

    def translation_meter(self) -> TranslationMeter | None:
        """The run's translation totals so far, for the checkpoint (None: it translates none)."""


class RunBatcher(PerLoop):
    """Per-event-loop batcher; get it with ``RunBatcher.current()``."""

    def __init__(self) -> None:
        self.runs: dict[int, BatchedRun] = {}
        self.pending: dict[tuple[int, str], FinalSegment] = {}
        self.translations: dict[TranslationKey, FinalTranslation] = {}
        self.translation_rounds: dict[TranslationKey, int] = {}  # rounds waited for the final
        self.full = asyncio.Event()
        # Held while writing usage: a run's final checkpoint and finalisation must not
        # interleave with a batched checkpoint that carries older counters.
        self.usage_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0
        self.failures = 0
        self.dropped = 0
        self.activity_at: dict[int, float] = {}  # session id -> when its activity was recorded
        self.meters: dict[int, metrics.RunMeter] = {}

    def register(self, run: BatchedRun) -> None:
        self.runs[run.run_id] = run
        if run.run_id not in self.meters:
            self.meters[run.run_id] = metrics.RunMeter(run.counters)
        if self._task is None or self._task.done():
            # Shared by every run of the loop: it must not log as the first run's.
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), context=logging_setup.unbound_context()
            )

    def unregister(self, run: BatchedRun) -> None:
        self.runs.pop(run.run_id, None)
        meter = self.meters.pop(run.run_id, None)
        if meter is not None:
            meter.close(run.counters)

    def add_final(self, segment: FinalSegment) -> None:
        key = (segment.session_id, segment.utterance_id)
        if (
            key not in self.pending
            and len(self.pending) >= settings.TRANSCRIPTION_MAX_PENDING_FINALS
        ):
            # The database has been away for long: bound the memory, lose the oldest.
            del self.pending[next(iter(self.pending))]
            self.dropped += 1
            metrics.error("finals_dropped")
            logger.error("pending finals past %d: dropped the oldest", len(self.pending))
        self.pending[key] = segment
        if len(self.pending) >= settings.TRANSCRIPTION_FLUSH_MAX_SEGMENTS:
            self.full.set()

    def add_translation(self, translation: FinalTranslation) -> None:
        """Queue a translation for the next round (after the finals, so its final is stored by
        then); one sent again for the same final and language replaces the pending one."""
        key = (translation.session_id, translation.utterance_id, translation.language)
        if (
            key not in self.translations
            and len(self.translations) >= settings.TRANSCRIPTION_MAX_PENDING_FINALS
        ):
            oldest = next(iter(self.translations))
            del self.translations[oldest]
            self.translation_rounds.pop(oldest, None)
            metrics.error("translations_dropped")
            logger.error("pending translations past %d: dropped the oldest", len(self.translations))
        self.translations[key] = translation
        if len(self.translations) >= settings.TRANSCRIPTION_FLUSH_MAX_SEGMENTS:
            self.full.set()

    def has_pending(self, run_id: int) -> bool:
        return any(segment.run_id == run_id for segment in self.pending.values()) or any(
            translation.run_id == run_id for translation in self.translations.values()
        )

    async def flush(self) -> bool:
        """Write every pending final in one statement, then their pending translations in one
        more; False (data kept) when a write failed. A translation never holds a final back."""
        self.full.clear()
        if not await self._flush_finals():
            return False
        return await self._flush_translations()

    async def _flush_finals(self) -> bool:
        if not self.pending:
            return True
        batch = dict(self.pending)
        elapsed = metrics.timed()
        # Speech is session activity; recorded once a minute per session, not per flush.
        now = time.monotonic()
        active = {
            s.session_id
            for s in batch.values()
            if now - self.activity_at.get(s.session_id, -ACTIVITY_EVERY) >= ACTIVITY_EVERY
        }
        try:
            await database_sync_to_async(store.segments_upsert)(
                finals=list(batch.values()), active_session_ids=active
            )
        except Exception:
            self.failures += 1
            metrics.error("finals_flush")
            logger.exception("storing %d finals failed; they stay queued", len(batch))
            return False
        for key, segment in batch.items():
            if self.pending.get(key) is segment:  # a newer version may have arrived meanwhile
                del self.pending[key]
        if active:
            self.activity_at = {
                s: t for s, t in self.activity_at.items() if now - t < ACTIVITY_EVERY
            }
            self.activity_at.update(dict.fromkeys(active, now))
        self.flushes += 1
        metrics.flush_observed(len(batch), elapsed())
        return True

    async def _flush_translations(self) -> bool:
        if not self.translations:
            return True
        batch = dict(self.translations)
        try:
            waiting = await database_sync_to_async(store.translations_upsert)(
                translations=list(batch.values())
            )
        except Exception:
            metrics.error("translations_flush")
            logger.exception("storing %d translations failed; they stay queued", len(batch))
            return False
        unstored = {(t.session_id, t.utterance_id, t.language) for t in waiting}
        for key, translation in batch.items():
            if self.translations.get(key) is not translation:
                continue  # a newer version arrived meanwhile: it goes next round
            if key not in unstored:
                del self.translations[key]
                self.translation_rounds.pop(key, None)
            elif key[:2] not in self.pending:  # (a final still queued is worth waiting for)
                rounds = self.translation_rounds.get(key, 0) + 1
                if rounds < TRANSLATION_MAX_WAIT_ROUNDS:
                    self.translation_rounds[key] = rounds
                    continue
                del self.translations[key]
                self.translation_rounds.pop(key, None)
                metrics.error("translation_orphaned")
                logger.warning(
                    "a %s translation of %s waited %d rounds for its final: dropped",
                    translation.language,
                    translation.utterance_id,
                    rounds,
                )
        return True

    async def checkpoint(self, runs: list[BatchedRun]) -> None:
        """Persist the meters of ``runs`` (transcription, then translation: one round); the
        caller holds ``usage_lock``."""
        counters = {run.run_id: run.counters for run in runs}
        owners = {run.run_id: run.channel for run in runs}
        translations: dict[int, TranslationMeter] = {}
        for run in runs:
            meter = run.translation_meter() if hasattr(run, "translation_meter") else None
            if meter is not None:
                translations[run.run_id] = meter
        await database_sync_to_async(_checkpoint)(
            counters=counters, owners=owners, translations=translations
        )

    async def _checkpoint_all(self) -> None:
        async with self.usage_lock:
            await self.checkpoint(list(self.runs.values()))
        # The space's month budget moves with every run's meter: refresh it from the new one.
        runs = dict(self.runs)
        budgets = await database_sync_to_async(limits.runs_budget)(run_ids=list(runs))
        for run_id, run in runs.items():
            run.on_budget(budgets.get(run_id))

    async def _loop(self) -> None:
        flush_every = settings.TRANSCRIPTION_FLUSH_SECONDS
        heartbeat_every = settings.TRANSCRIPTION_HEARTBEAT_SECONDS
        checkpoint_every = settings.TRANSCRIPTION_USAGE_CHECKPOINT_SECONDS
        last_heartbeat = last_checkpoint = time.monotonic()
        while self.runs or self.pending or self.translations:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.full.wait(), timeout=flush_every)
            await self.flush()
            for run_id, meter in self.meters.items():
                meter.publish(self.runs[run_id].counters)
            now = time.monotonic()
            if now - last_heartbeat >= heartbeat_every and self.runs:
                last_heartbeat = now
                await self._guarded(self._heartbeat)
            if now - last_checkpoint >= checkpoint_every and self.runs:
                last_checkpoint = now
                await self._guarded(self._checkpoint_all)

    async def _heartbeat(self) -> None:
        runs = dict(self.runs)
        owners = {run_id: run.channel for run_id, run in runs.items()}
        sessions = {run.session_id for run in runs.values() if hasattr(run, "on_captions")}
        statuses, captions = await database_sync_to_async(_heartbeat_round)(
            owners=owners, session_ids=sessions
        )
        for run_id, run in runs.items():
            run.on_status(statuses.get(run_id))
            if hasattr(run, "on_captions"):
                run.on_captions(captions.get(run.session_id, set()))

    @staticmethod
    async def _guarded(work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception:
            # The database may be away for a while; runs go on and the next round retries.
            metrics.error("batch_round")
            logger.exception("batched heartbeat/checkpoint failed")


def _heartbeat_round(
    *, owners: dict[int, str], session_ids: set[int]
) -> tuple[dict[int, str], dict[int, set[str]]]:
    """The heartbeat and the caption languages of the runs' sessions, in one thread hop."""
    return store.runs_heartbeat(owners=owners), store.caption_languages(session_ids=session_ids)


def _checkpoint(
    *,
    counters: dict[int, UsageCounters],
    owners: dict[int, str],
    translations: dict[int, TranslationMeter],
) -> None:
    metering.usage_checkpoint(counters=counters, owners=owners)
    store.translations_checkpoint(meters=translations, owners=owners)
