"""Every status a run can move to, from where: the only place that changes ``run.status``.

A change is a conditional UPDATE (``WHERE status IN allowed sources``), so two workers racing to
move the same run cannot both win, and a stale actor cannot resurrect a finished run.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from transcription.models import TranscriptionRun

S = TranscriptionRun.Status

ALLOWED: dict[str, tuple[str, ...]] = {
    # target: the statuses it may come from
    S.STARTING: (S.STARTING, S.ACTIVE),  # ACTIVE -> STARTING: a supervisor restarts a dead run
    S.ACTIVE: (S.STARTING,),
    S.STOPPING: (S.STARTING, S.ACTIVE),
    S.STOPPED: (S.STARTING, S.ACTIVE, S.STOPPING),
    S.FAILED: (S.STARTING, S.ACTIVE, S.STOPPING),
}
TERMINAL = (S.STOPPED, S.FAILED)


def transition(
    run_id: int,
    to: str,
    *,
    only_from: tuple[str, ...] | None = None,
    where: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move run ``run_id`` to ``to`` if its current status allows it; return whether it moved.

    ``only_from`` narrows the allowed sources further (e.g. a claim: STARTING -> ACTIVE only);
    ``where`` adds conditions (e.g. the heartbeat a supervisor saw, so two never both win).
    Terminal statuses also stamp ``ended_at``.
    """
    sources = ALLOWED[to]
    if only_from is not None:
        sources = tuple(s for s in sources if s in only_from)
    if to in TERMINAL:
        fields.setdefault("ended_at", timezone.now())
    updated = TranscriptionRun.objects.filter(
        pk=run_id, status__in=sources, **(where or {})
    ).update(status=to, **fields)
    return updated == 1


def held_by(owners: dict[int, str]) -> Q:
    """Runs still held by the runner that names them: ``{run id: its control channel}``.

    Every write a runner makes goes through this (or ``where={"control_channel": ...}``): a
    runner that stalled past the stale time was replaced by the supervisor (the run was
    unclaimed, then claimed by another runner with another channel), and when it wakes up its
    heartbeat, meter and finish must not land on the run its successor now holds.
    """
    held = Q(pk__in=[])
    for run_id, channel in owners.items():
        held |= Q(pk=run_id, control_channel=channel)
    return held
