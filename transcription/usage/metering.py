"""The meter of a run: counters checkpointed while it runs, billed minutes and cost at the end.

``billed minutes = ceil(seconds / 60)``, ``total = billed minutes x cost per minute``
(``transcription.usage.pricing``). A crash loses at most one checkpoint interval of metering; a
restarted runner resumes from the stored values (``usage_baseline``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
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


_CHECKPOINTED = (
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
)


def usage_checkpoint(*, counters: dict[int, UsageCounters], owners: dict[int, str]) -> None:
    """Persist the meters of several runs (run id -> its totals) in one round trip.

    A crash then loses at most one checkpoint interval of metering. Finalised meters are left
    alone. Counters are totals since the run started; a restarted runner resumes from the
    stored values (``usage_baseline``). Only the meters of runs the runner still holds
    (``owners``: run id -> its control channel) are written.

    One parameterised UPDATE run for every meter (``executemany``), not ``bulk_update``: that
    builds a CASE expression per field and row, ~100 ms of Python at 50 runs in the database
    thread, which held the GIL from the event loop that carries the same runs' audio: every
    checkpoint showed as a latency spike of every live transcript (docs/benchmarks.md).
    """
    if not counters:
        return
    held = TranscriptionRun.objects.filter(held_by(owners), pk__in=counters).values("pk")
    meters = TranscriptionUsage.objects.filter(run_id__in=held, finalized=False).values_list(
        "pk", "run_id", "cost_per_minute"
    )
    ops = connection.ops
    fields = {name: TranscriptionUsage._meta.get_field(name) for name in _CHECKPOINTED}
    cost = fields["total_cost"]
    now = ops.adapt_datetimefield_value(timezone.now())
    rows = []
    for pk, run_id, cost_per_minute in meters:
        c = counters[run_id]
        minutes = billed_minutes(c.audio_seconds)
        total = ops.adapt_decimalfield_value(
            total_cost(minutes, cost_per_minute), cost.max_digits, cost.decimal_places
        )
        rows.append(
            (
                c.audio_seconds,
                minutes,
                total,
                c.audio_chunks,
                c.audio_bytes,
                c.partial_count,
                c.final_count,
                c.error_count,
                c.reconnect_count,
                now,
                pk,
            )
        )
    if not rows:
        return
    quote = ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields.values())
    table = quote(TranscriptionUsage._meta.db_table)
    finalized = quote(TranscriptionUsage._meta.get_field("finalized").column)
    # Only quoted names from the model's meta go into the text; every value is a parameter.
    sql = f"UPDATE {table} SET {assignments} WHERE {quote('id')} = %s AND NOT {finalized}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


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
