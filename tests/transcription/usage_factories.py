"""Usage rows for the usage/cost report tests, metered like the pipeline does it."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from sessions_app.models import Participant, VideoSession
from transcription.models import TranscriptionRun, TranscriptionUsage
from transcription.usage.pricing import billed_minutes, total_cost

RATE = Decimal("0.0125")


def make_usage(
    *,
    session: VideoSession,
    user,
    seconds: float,
    created_at: datetime | None = None,
    rate: Decimal = RATE,
    provider: str = "local",
) -> TranscriptionUsage:
    """A stopped run of ``session`` started by ``user`` that metered ``seconds`` of audio."""
    created_at = created_at or timezone.now()
    run = TranscriptionRun.objects.create(
        session=session,
        mode=TranscriptionRun.Mode.BROWSER,
        provider=provider,
        status=TranscriptionRun.Status.STOPPED,
        started_by=user,
        created_at=created_at,
        started_at=created_at,
        ended_at=created_at + timedelta(seconds=seconds),
    )
    minutes = billed_minutes(seconds)
    return TranscriptionUsage.objects.create(
        session=session,
        run=run,
        user=user,
        provider=provider,
        started_at=created_at,
        ended_at=created_at + timedelta(seconds=seconds),
        duration_seconds=seconds,
        billed_minutes=minutes,
        cost_per_minute=rate,
        total_cost=total_cost(minutes, rate),
        finalized=True,
        created_at=created_at,
    )


def make_participant(
    *,
    session: VideoSession,
    identity: str,
    joined_at: datetime,
    left_at: datetime | None = None,
    user=None,
) -> Participant:
    return Participant.objects.create(
        session=session,
        user=user,
        identity=identity,
        name=identity.title(),
        joined_at=joined_at,
        left_at=left_at,
    )


def at(day: str, hour: int = 12) -> datetime:
    """A moment on ``day`` (YYYY-MM-DD) in the current time zone."""
    return timezone.make_aware(datetime.fromisoformat(day).replace(hour=hour))
