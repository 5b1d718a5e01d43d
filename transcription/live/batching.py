"""The database work of every run in one process, batched: finals, heartbeats, usage.

A process (a Daphne in embedded mode, an ingest worker) may run many pipelines in one event
loop. Writing each run's finals, heartbeat and meter on its own would cost several database
round-trips per run per second; instead one ``RunBatcher`` per event loop does, for all of them:

- one upsert of every pending final, every ``TRANSCRIPTION_FLUSH_SECONDS`` (or sooner when
  ``TRANSCRIPTION_FLUSH_MAX_SEGMENTS`` are waiting);
- one heartbeat UPDATE (and status read) every ``TRANSCRIPTION_HEARTBEAT_SECONDS``, which also
  tells each pipeline when its run was stopped elsewhere;
- one usage checkpoint every ``TRANSCRIPTION_USAGE_CHECKPOINT_SECONDS``, after which each
  run learns its refreshed minute budget (``transcription.usage.limits.runs_budget``).

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
from collections.abc import Awaitable, Callable
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from rooms import logging_setup, metrics
from sessions_app.models import ACTIVITY_RESOLUTION
from transcription.live import store
from transcription.live.loops import PerLoop
from transcription.live.store import FinalSegment
from transcription.usage import limits, metering
from transcription.usage.metering import UsageCounters

logger = logging.getLogger(__name__)
ACTIVITY_EVERY = ACTIVITY_RESOLUTION.total_seconds()


class BatchedRun(Protocol):
    run_id: int
    # The runner's control channel: its writes land only while the run row still names it.
    channel: str
    counters: UsageCounters

    def on_status(self, status: str | None) -> None:
        """Told the run's status after each heartbeat (None: the run row is gone)."""

    def on_budget(self, budget: limits.RunBudget | None) -> None:
        """Told the run's limits after each usage checkpoint (None: the run row is gone)."""


class RunBatcher(PerLoop):
    """Per-event-loop batcher; get it with ``RunBatcher.current()``."""

    def __init__(self) -> None:
        self.runs: dict[int, BatchedRun] = {}
        self.pending: dict[tuple[int, str], FinalSegment] = {}
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

    def has_pending(self, run_id: int) -> bool:
        return any(segment.run_id == run_id for segment in self.pending.values())

    async def flush(self) -> bool:
        """Write every pending final in one statement; False (data kept) when it failed."""
        self.full.clear()
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

    async def checkpoint(self, runs: list[BatchedRun]) -> None:
        """Persist the meters of ``runs``; the caller holds ``usage_lock``."""
        counters = {run.run_id: run.counters for run in runs}
        owners = {run.run_id: run.channel for run in runs}
        await database_sync_to_async(metering.usage_checkpoint)(counters=counters, owners=owners)

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
        while self.runs or self.pending:
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
        statuses = await database_sync_to_async(store.runs_heartbeat)(owners=owners)
        for run_id, run in runs.items():
            run.on_status(statuses.get(run_id))

    @staticmethod
    async def _guarded(work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception:
            # The database may be away for a while; runs go on and the next round retries.
            metrics.error("batch_round")
            logger.exception("batched heartbeat/checkpoint failed")
