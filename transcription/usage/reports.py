"""Usage and cost reports: every figure is an aggregate the database computes.

Callers pass a user, a session or a space they already fetched through an access-checked
selector (``session_get_for_user``, ``space_get_for_user``); these functions only scope rows to
it. Reports never loop over usage rows in Python: sums, counts and per-day series are
``aggregate``/``annotate`` queries, and a user, session or space with no usage gets zeros.

Video cost is an estimate: LiveKit bills participant-minutes, so each participant connection
counts from ``joined_at`` to ``left_at`` (one still present counts until the session's
``ended_at``, or until now while it is live), rounded up to a whole minute like a transcription
run, times ``LIVEKIT_COST_PER_PARTICIPANT_MINUTE``. Peer-to-peer (mesh) sessions, and every
session when LiveKit is not configured, cost nothing in video.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import models
from django.db.models import (
    Case,
    Count,
    DecimalField,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Ceil, Coalesce, Greatest, Now, Round, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from rooms.errors import DomainError, Forbidden
from sessions_app.models import Participant, VideoSession
from spaces.models import Space
from spaces.selectors import space_get_for_user
from transcription.models import TranscriptionUsage
from transcription.usage.pricing import COST_PLACES, quantize_cost, video_cost

M = TypeVar("M", bound=models.Model)

TOP_SESSIONS = 10
SUMMARY_DAYS = 30
_MONEY = DecimalField(max_digits=16, decimal_places=COST_PLACES)
_ZERO_MONEY = Value(Decimal("0"), output_field=_MONEY)


class InvalidPeriod(DomainError):
    code = "invalid_period"
    status = 400


@dataclass(frozen=True, slots=True)
class Period:
    """Whole days, both ends inclusive, in the current time zone; ``None`` is open-ended."""

    start: date | None = None
    end: date | None = None

    def filter(self, queryset: QuerySet[M], field: str) -> QuerySet[M]:
        """Rows of ``queryset`` whose ``field`` lies in the period, as an index-friendly range."""
        zone = timezone.get_current_timezone()
        if self.start is not None:
            lower = datetime.combine(self.start, time.min, tzinfo=zone)
            queryset = queryset.filter(**{f"{field}__gte": lower})
        if self.end is not None and self.end < date.max:
            upper = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone)
            queryset = queryset.filter(**{f"{field}__lt": upper})
        return queryset


def _parse_day(name: str, raw: str | None) -> date | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        return datetime.strptime(raw.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise InvalidPeriod(
            _("'%(name)s' must be a date written YYYY-MM-DD, got '%(value)s'.")
            % {"name": name, "value": raw.strip()[:20]}
        ) from None


def period_parse(*, start: str | None, end: str | None) -> Period:
    """The period of a ``?from=&to=`` query; ``InvalidPeriod`` (400) on a bad date or order."""
    period = Period(start=_parse_day("from", start), end=_parse_day("to", end))
    if period.start and period.end and period.start > period.end:
        raise InvalidPeriod(
            _("'from' (%(start)s) must not be after 'to' (%(end)s).")
            % {"start": period.start.isoformat(), "end": period.end.isoformat()}
        )
    return period


def space_get_for_owner(*, user: Any, slug: str) -> Space:
    """The space if ``user`` owns it; a member gets 403 (``owner_required``), an outsider 404."""
    space = space_get_for_user(user=user, slug=slug)
    if not space.membership.is_owner:
        raise Forbidden(_("Only owners of the space can see its usage."), code="owner_required")
    return space


# --- Transcription -------------------------------------------------------------------------


def usage_for_user(*, user: Any, period: Period = Period()) -> QuerySet[TranscriptionUsage]:
    """Usage of the runs ``user`` started."""
    return period.filter(TranscriptionUsage.objects.filter(user_id=user.pk), "created_at")


def usage_for_session(
    *, session: VideoSession, period: Period = Period()
) -> QuerySet[TranscriptionUsage]:
    return period.filter(TranscriptionUsage.objects.filter(session_id=session.pk), "created_at")


def usage_for_space(*, space: Space, period: Period = Period()) -> QuerySet[TranscriptionUsage]:
    return period.filter(
        TranscriptionUsage.objects.filter(session__space_id=space.pk), "created_at"
    )


def usage_totals(usage: QuerySet[TranscriptionUsage]) -> dict[str, Any]:
    """Billed minutes, cost, metered seconds, runs, sessions and minutes per run; zeros if none."""
    totals = usage.aggregate(
        minutes=Coalesce(Sum("billed_minutes"), 0),
        cost=Coalesce(Sum("total_cost"), _ZERO_MONEY),
        duration_seconds=Coalesce(Sum("duration_seconds"), 0.0),
        # COUNT(*) needs no column, so the covering indexes answer without the table.
        runs=Count("*"),
        sessions=Count("session_id", distinct=True),
    )
    totals["cost"] = quantize_cost(totals["cost"])
    runs = totals["runs"]
    totals["average_minutes_per_run"] = (
        (Decimal(totals["minutes"]) / runs).quantize(Decimal("0.01")) if runs else Decimal("0.00")
    )
    return totals


def usage_by_day(usage: QuerySet[TranscriptionUsage]) -> list[dict[str, Any]]:
    """``[{date, minutes, cost}]`` for each day with usage, oldest first."""
    rows = (
        usage.annotate(date=TruncDate("created_at"))
        .values("date")
        .annotate(minutes=Sum("billed_minutes"), cost=Sum("total_cost"))
        .order_by("date")
    )
    return [{**row, "cost": quantize_cost(row["cost"])} for row in rows]


# --- Video (LiveKit participant-minutes) -----------------------------------------------------


class _EpochSeconds(Func):
    """Seconds in an interval, exact to the microsecond (``numeric`` in PostgreSQL)."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = DecimalField()


def _connection_minutes() -> Func:
    """Whole minutes, rounded up, of one participant connection (a ``Participant`` row)."""
    until = Coalesce("left_at", "session__ended_at", Now())
    seconds = Greatest(_EpochSeconds(until - F("joined_at")), Value(Decimal("0")))
    return Cast(Ceil(seconds / Value(Decimal("60"))), models.BigIntegerField())


def _video_participants(participants: QuerySet[Participant]) -> QuerySet[Participant]:
    """Connections that LiveKit bills: not in peer-to-peer sessions, and none without LiveKit."""
    if not settings.LIVEKIT_ENABLED:
        return participants.none()
    return participants.filter(session__peer_to_peer=False)


def _video_rate() -> Value:
    return Value(settings.LIVEKIT_COST_PER_PARTICIPANT_MINUTE, output_field=_MONEY)


def sessions_with_cost(
    sessions: QuerySet[VideoSession], *, period: Period = Period()
) -> QuerySet[VideoSession]:
    """``sessions`` annotated with ``transcription_minutes``, ``transcription_cost``, ``run_count``,
    ``participant_minutes``, ``video_cost`` and ``total_cost`` for usage and connections that
    started in ``period``; each a correlated subquery, so no row multiplication."""
    usage = (
        period.filter(TranscriptionUsage.objects.filter(session_id=OuterRef("pk")), "created_at")
        .order_by()
        .values("session_id")
    )
    sessions = sessions.annotate(
        transcription_minutes=Coalesce(
            Subquery(usage.annotate(v=Sum("billed_minutes")).values("v")), 0
        ),
        transcription_cost=Coalesce(
            Subquery(usage.annotate(v=Sum("total_cost")).values("v"), output_field=_MONEY),
            _ZERO_MONEY,
        ),
        run_count=Coalesce(Subquery(usage.annotate(v=Count("*")).values("v")), 0),
    )
    if settings.LIVEKIT_ENABLED:
        connections = (
            period.filter(Participant.objects.filter(session_id=OuterRef("pk")), "joined_at")
            .order_by()
            .values("session_id")
            .annotate(v=Sum(_connection_minutes()))
            .values("v")
        )
        minutes = Case(
            When(peer_to_peer=True, then=Value(0)),
            default=Coalesce(Subquery(connections), 0),
            output_field=models.BigIntegerField(),
        )
    else:
        minutes = Value(0, output_field=models.BigIntegerField())
    return sessions.annotate(
        participant_minutes=minutes,
        video_cost=Round(
            F("participant_minutes") * _video_rate(), COST_PLACES, output_field=_MONEY
        ),
        total_cost=F("transcription_cost") + F("video_cost"),
    )


@dataclass(frozen=True, slots=True)
class SessionCost:
    transcription_minutes: int
    transcription_cost: Decimal
    runs: int
    participant_minutes: int
    video_cost: Decimal
    total_cost: Decimal
    uses_livekit: bool
    # Metered seconds of all runs: billing rounds each run up to whole minutes.
    transcription_seconds: float = 0.0


_COST_FIELDS = (
    "transcription_minutes",
    "transcription_cost",
    "run_count",
    "participant_minutes",
    "video_cost",
    "total_cost",
)


def session_cost(*, session: VideoSession) -> SessionCost:
    """The whole cost of one session so far: transcription + video estimate (one query)."""
    seconds = (
        TranscriptionUsage.objects.filter(session_id=OuterRef("pk"))
        .order_by()
        .values("session_id")
        .annotate(v=Sum("duration_seconds"))
        .values("v")
    )
    row = (
        sessions_with_cost(VideoSession.objects.filter(pk=session.pk))
        .annotate(transcription_seconds=Coalesce(Subquery(seconds), 0.0))
        .values(*_COST_FIELDS, "transcription_seconds")[0]
    )
    return SessionCost(
        transcription_minutes=row["transcription_minutes"],
        transcription_cost=quantize_cost(row["transcription_cost"]),
        runs=row["run_count"],
        participant_minutes=row["participant_minutes"],
        video_cost=quantize_cost(row["video_cost"]),
        total_cost=quantize_cost(row["total_cost"]),
        uses_livekit=session.uses_livekit,
        transcription_seconds=float(row["transcription_seconds"]),
    )


# --- Reports -------------------------------------------------------------------------------


def user_report(*, user: Any, period: Period = Period()) -> dict[str, Any]:
    """The user's own transcription usage: totals and the per-day series."""
    usage = usage_for_user(user=user, period=period)
    return {**usage_totals(usage), "period": period, "days": usage_by_day(usage)}


def session_report(*, session: VideoSession) -> dict[str, Any]:
    """A session's usage rows, their totals and the full cost with the video estimate."""
    usage = usage_for_session(session=session)
    return {
        "rows": usage.select_related("user").order_by("created_at"),
        "totals": usage_totals(usage),
        "cost": session_cost(session=session),
    }


def space_report(*, space: Space, period: Period = Period(), top: int = TOP_SESSIONS) -> dict:
    """What a space cost in ``period`` and which sessions drove it (for its owners)."""
    usage = usage_for_space(space=space, period=period)
    totals = usage_totals(usage)
    connections = period.filter(Participant.objects.filter(session__space_id=space.pk), "joined_at")
    video_days = _video_minutes_by_day(connections)
    minutes = sum(video_days.values())
    video = video_cost(minutes, settings.LIVEKIT_COST_PER_PARTICIPANT_MINUTE)
    top_sessions = (
        sessions_with_cost(VideoSession.objects.filter(space_id=space.pk), period=period)
        .filter(Q(run_count__gt=0) | Q(participant_minutes__gt=0))
        .order_by("-total_cost", "-created_at")[:top]
    )
    return {
        **totals,
        "transcription_cost": totals["cost"],
        "participant_minutes": minutes,
        "video_cost": video,
        "total_cost": totals["cost"] + video,
        "period": period,
        "days": _days_with_video(usage_by_day(usage), video_days),
        "top_sessions": list(top_sessions),
    }


def _video_minutes_by_day(connections: QuerySet[Participant]) -> dict[date, int]:
    """Billed participant-minutes per day the connections started, summed in the database."""
    rows = (
        _video_participants(connections)
        .annotate(date=TruncDate("joined_at"))
        .values("date")
        .annotate(minutes=Sum(_connection_minutes()))
        .order_by("date")
        .values_list("date", "minutes")
    )
    return dict(rows)


def _days_with_video(days: list[dict[str, Any]], video: dict[date, int]) -> list[dict[str, Any]]:
    """Joins the two per-day series (each at most one entry per day) on the date."""
    rate = settings.LIVEKIT_COST_PER_PARTICIPANT_MINUTE
    by_date = {d["date"]: {**d, "video_cost": Decimal("0.0000")} for d in days}
    for day, minutes in video.items():
        entry = by_date.setdefault(day, {"date": day, "minutes": 0, "cost": Decimal("0.0000")})
        entry["video_cost"] = video_cost(minutes, rate)
    return [by_date[day] for day in sorted(by_date)]


def space_summary(*, space: Space) -> dict:
    """The last ``SUMMARY_DAYS`` days of a space's usage, for the owners' section of its page."""
    today = timezone.localdate()
    period = Period(start=today - timedelta(days=SUMMARY_DAYS - 1), end=today)
    return space_report(space=space, period=period, top=5)
