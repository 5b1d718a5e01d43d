"""The database work of every run in one process, batched: finals, heartbeats, usage.

A process (a Daphne in embedded mode, an ingest worker) may run many pipelines in one event
loop. Writing each run's finals, heartbeat and meter on its own would cost several database
round-trips per run per second; instead one ``RunBatcher`` per event loop does, for all of them:

- one upsert of every pending final, every ``TRANSCRIPTION_FLUSH_SECONDS`` (or sooner when
  ``TRANSCRIPTION_FLUSH_MAX_SEGMENTS`` are waiting);
- one heartbeat UPDATE (and status read) every ``TRANSCRIPTION_HEARTBEAT_SECONDS``, which also
  tells each pipeline when its run was stopped elsewhere;
- one usage checkpoint every ``TRANSCRIPTION_USAGE_CHECKPOINT_SECONDS``.

A failed write keeps its data and is retried on the next round, so a database outage delays
finals and metering but loses neither.
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

from transcription import services
from transcription.loops import PerLoop
from transcription.services import FinalSegment, UsageCounters

logger = logging.getLogger(__name__)


class BatchedRun(Protocol):
    run_id: int
    counters: UsageCounters

    def on_status(self, status: str | None) -> None:
        """Told the run's status after each heartbeat (None: the run row is gone)."""


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

    def register(self, run: BatchedRun) -> None:
        self.runs[run.run_id] = run
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    def unregister(self, run: BatchedRun) -> None:
        self.runs.pop(run.run_id, None)

    def add_final(self, segment: FinalSegment) -> None:
        self.pending[(segment.session_id, segment.utterance_id)] = segment
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
        try:
            await database_sync_to_async(services.segments_upsert)(finals=list(batch.values()))
        except Exception:
            self.failures += 1
            logger.exception("storing %d finals failed; they stay queued", len(batch))
            return False
        for key, segment in batch.items():
            if self.pending.get(key) is segment:  # a newer version may have arrived meanwhile
                del self.pending[key]
        self.flushes += 1
        return True

    async def checkpoint(self, runs: list[BatchedRun]) -> None:
        """Persist the meters of ``runs``; the caller holds ``usage_lock``."""
        counters = {run.run_id: run.counters for run in runs}
        await database_sync_to_async(services.usage_checkpoint)(counters=counters)

    async def _checkpoint_all(self) -> None:
        async with self.usage_lock:
            await self.checkpoint(list(self.runs.values()))

    async def _loop(self) -> None:
        flush_every = settings.TRANSCRIPTION_FLUSH_SECONDS
        heartbeat_every = settings.TRANSCRIPTION_HEARTBEAT_SECONDS
        checkpoint_every = settings.TRANSCRIPTION_USAGE_CHECKPOINT_SECONDS
        last_heartbeat = last_checkpoint = time.monotonic()
        while self.runs or self.pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.full.wait(), timeout=flush_every)
            await self.flush()
            now = time.monotonic()
            if now - last_heartbeat >= heartbeat_every and self.runs:
                last_heartbeat = now
                await self._guarded(self._heartbeat)
            if now - last_checkpoint >= checkpoint_every and self.runs:
                last_checkpoint = now
                await self._guarded(self._checkpoint_all)

    async def _heartbeat(self) -> None:
        runs = dict(self.runs)
        statuses = await database_sync_to_async(services.runs_heartbeat)(run_ids=list(runs))
        for run_id, run in runs.items():
            run.on_status(statuses.get(run_id))

    @staticmethod
    async def _guarded(work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception:
            # The database may be away for a while; runs go on and the next round retries.
            logger.exception("batched heartbeat/checkpoint failed")
