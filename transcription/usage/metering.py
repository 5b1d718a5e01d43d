"""The meter of a run: counters checkpointed while it runs, billed minutes and cost at the end.

``billed minutes = ceil(seconds / 60)``, ``total = billed minutes x cost per minute``
(``transcription.usage.pricing``). A crash loses at most one checkpoint interval of metering; a
restarted runner resumes from the stored values (``usage_baseline``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from rooms import metrics
from transcription.live.transitions import held_by
from transcription.models import TranscriptionRun, TranscriptionUsage
from transcription.usage.pricing import billed_minutes, total_cost


@dataclass(slots=True)
class UsageCounters:
    audio_seconds: float = 0.0
    audio_chunks: int = 0
    audio_bytes: int = 0
    partial_count: int = 0
    final_count: int = 0
    error_count: int = 0
    reconnect_count: int = 0


def usage_checkpoint(*, counters: dict[int, UsageCounters], owners: dict[int, str]) -> None:
    """Persist the meters of several runs (run id -> its totals) in one statement.

    A crash then loses at most one checkpoint interval of metering. Finalised meters are left
    alone. Counters are totals since the run started; a restarted runner resumes from the
    stored values (``usage_baseline``). Only the meters of runs the runner still holds
    (``owners``: run id -> its control channel) are written.
    """
    if not counters:
        return
    held = TranscriptionRun.objects.filter(held_by(owners), pk__in=counters).values("pk")
    usages = list(TranscriptionUsage.objects.filter(run_id__in=held, finalized=False))
    now = timezone.now()
    for usage in usages:
        c = counters[usage.run_id]
        usage.duration_seconds = c.audio_seconds
        usage.billed_minutes = billed_minutes(c.audio_seconds)
        usage.total_cost = total_cost(usage.billed_minutes, usage.cost_per_minute)
        usage.audio_chunks = c.audio_chunks
        usage.audio_bytes = c.audio_bytes
        usage.partial_count = c.partial_count
        usage.final_count = c.final_count
        usage.error_count = c.error_count
        usage.reconnect_count = c.reconnect_count
        usage.updated_at = now
    TranscriptionUsage.objects.bulk_update(
        usages,
        [
            "duration_seconds",
            "billed_minutes",
            "total_cost",
            "audio_chunks",
            "audio_bytes",
            "partial_count",
            "final_count",
            "error_count",
            "reconnect_count",
            "updated_at",
        ],
    )


def usage_baseline(*, run_id: int) -> UsageCounters:
    """What the meter of ``run_id`` already holds (a restarted runner continues from it)."""
    usage = TranscriptionUsage.objects.get(run_id=run_id)
    return UsageCounters(
        audio_seconds=usage.duration_seconds,
        audio_chunks=usage.audio_chunks,
        audio_bytes=usage.audio_bytes,
        partial_count=usage.partial_count,
        final_count=usage.final_count,
        error_count=usage.error_count,
        reconnect_count=usage.reconnect_count,
    )


def usage_finalize(*, run_id: int) -> TranscriptionUsage:
    """Close the meter: billed minutes and cost from the metered duration. Idempotent."""
    usage = TranscriptionUsage.objects.get(run_id=run_id)
    if usage.finalized:
        return usage
    minutes = billed_minutes(usage.duration_seconds)
    usage.billed_minutes = minutes
    usage.total_cost = total_cost(minutes, usage.cost_per_minute)
    usage.ended_at = timezone.now()
    usage.finalized = True
    usage.save(
        update_fields=["billed_minutes", "total_cost", "ended_at", "finalized", "updated_at"]
    )
    cost = usage.total_cost
    transaction.on_commit(lambda: metrics.usage_billed(minutes, cost))
    return usage
