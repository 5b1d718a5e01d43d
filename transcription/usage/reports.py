"""Usage and cost reports: every figure is an aggregate the database computes.

Callers pass a user, a session or a space they already fetched through an access-checked
selector (``session_get_for_user``, ``space_get_for_user``); these functions only scope rows to
it. Reports never loop over usage rows in Python: sums, counts and per-day series are
``aggregate``/``annotate`` queries, and a user, session or space with no usage gets zeros.

Translation is metered apart (``TranslationUsage``: characters of translated text per run and
target language, priced per million characters) and shown next to transcription and video: the
totals here are transcription + translation (+ video where the report has it).

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
from spaces.languages import language_label
from spaces.models import Space
from spaces.selectors import space_get_for_user
from transcription.models import TranscriptionUsage, TranslationUsage
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


# --- Translation (characters per target language) -------------------------------------------


def translation_for_user(*, user: Any, period: Period = Period()) -> QuerySet[TranslationUsage]:
    """Translation of the runs ``user`` started, and what they had re-translated afterwards."""
    return period.filter(TranslationUsage.objects.filter(user_id=user.pk), "created_at")


def translation_for_session(
    *, session: VideoSession, period: Period = Period()
) -> QuerySet[TranslationUsage]:
    return period.filter(TranslationUsage.objects.filter(session_id=session.pk), "created_at")


def translation_for_space(*, space: Space, period: Period = Period()) -> QuerySet[TranslationUsage]:
    return period.filter(TranslationUsage.objects.filter(session__space_id=space.pk), "created_at")


def translation_totals(usage: QuerySet[TranslationUsage], *, by_day: bool = False) -> dict:
    """Characters, segments and cost of ``usage``: in all, per language (``languages``, the
    costliest first, each named in the active language) and, with ``by_day``, per day
    (``days``, oldest first). One grouped query; the few groups (languages x days) are added up
    here. Zeros and empty lists if none."""
    groups = usage.order_by()
    keys = ["language"]
    if by_day:
        groups = groups.annotate(date=TruncDate("created_at"))
        keys.append("date")
    rows = groups.values(*keys).annotate(
        characters=Sum("characters"), segments=Sum("segments"), cost=Sum("total_cost")
    )
    languages: dict[str, dict[str, Any]] = {}
    days: dict[date, dict[str, Any]] = {}
    for row in rows:
        language = languages.setdefault(
            row["language"],
            {"language": row["language"], "characters": 0, "segments": 0, "cost": Decimal(0)},
        )
        for field in ("characters", "segments", "cost"):
            language[field] += row[field]
        if by_day:
            day = days.setdefault(
                row["date"], {"date": row["date"], "characters": 0, "cost": Decimal(0)}
            )
            day["characters"] += row["characters"]
            day["cost"] += row["cost"]
    ordered = sorted(
        languages.values(), key=lambda x: (-x["cost"], -x["characters"], x["language"])
    )
    return {
        "characters": sum(x["characters"] for x in ordered),
        "segments": sum(x["segments"] for x in ordered),
        "cost": quantize_cost(sum(x["cost"] for x in ordered)),
        "rate": settings.TRANSLATION_COST_PER_MILLION_CHARACTERS,
        "languages": [
            {**x, "name": language_label(x["language"]), "cost": quantize_cost(x["cost"])}
            for x in ordered
        ],
        "days": [{**days[d], "cost": quantize_cost(days[d]["cost"])} for d in sorted(days)],
    }


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
    ``translation_characters``, ``translation_cost``, ``participant_minutes``, ``video_cost``
    and ``total_cost`` (the three costs) for usage and connections that started in ``period``;
    each a correlated subquery, so no row multiplication."""
    usage = (
        period.filter(TranscriptionUsage.objects.filter(session_id=OuterRef("pk")), "created_at")
        .order_by()
        .values("session_id")
    )
    translated = (
        period.filter(TranslationUsage.objects.filter(session_id=OuterRef("pk")), "created_at")
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
        translation_characters=Coalesce(
            Subquery(translated.annotate(v=Sum("characters")).values("v")),
            0,
            output_field=models.BigIntegerField(),
        ),
        translation_cost=Coalesce(
            Subquery(translated.annotate(v=Sum("total_cost")).values("v"), output_field=_MONEY),
            _ZERO_MONEY,
        ),
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
        total_cost=F("transcription_cost") + F("translation_cost") + F("video_cost"),
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
    translation_characters: int = 0
    translation_cost: Decimal = Decimal("0.0000")
    # [{language, name, characters, segments, cost}], the costliest first.
    translation_languages: tuple[dict[str, Any], ...] = ()


_COST_FIELDS = (
    "transcription_minutes",
    "transcription_cost",
    "run_count",
    "translation_characters",
    "translation_cost",
    "participant_minutes",
    "video_cost",
    "total_cost",
)


def session_cost(*, session: VideoSession) -> SessionCost:
    """The whole cost of one session so far: transcription + translation + video estimate (one
    query, and one more for translation per language)."""
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
    # Per language only where something was translated: most sessions skip that query.
    languages = (
        translation_totals(translation_for_session(session=session))["languages"]
        if row["translation_characters"] or row["translation_cost"]
        else []
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
        translation_characters=row["translation_characters"],
        translation_cost=quantize_cost(row["translation_cost"]),
        translation_languages=tuple(languages),
    )


# --- Reports -------------------------------------------------------------------------------


def user_report(*, user: Any, period: Period = Period()) -> dict[str, Any]:
    """The user's own usage: transcription totals (``cost`` is transcription's), translation
    (``translation``), their sum (``total_cost``) and the per-day series of both."""
    usage = usage_for_user(user=user, period=period)
    totals = usage_totals(usage)
    translation = translation_totals(translation_for_user(user=user, period=period), by_day=True)
    return {
        **totals,
        "period": period,
        "translation": translation,
        "total_cost": totals["cost"] + translation["cost"],
        "days": _days_joined(usage_by_day(usage), translation=translation["days"]),
    }


def session_report(*, session: VideoSession) -> dict[str, Any]:
    """A session's usage rows, their totals, its translation (per language, and its meter's
    rows) and the full cost with the video estimate."""
    usage = usage_for_session(session=session)
    cost = session_cost(session=session)
    translated = translation_for_session(session=session).select_related("user")
    return {
        "rows": usage.select_related("user").order_by("created_at"),
        "totals": usage_totals(usage),
        "cost": cost,
        "translation": {
            "characters": cost.translation_characters,
            "segments": sum(x["segments"] for x in cost.translation_languages),
            "cost": cost.translation_cost,
            "rate": settings.TRANSLATION_COST_PER_MILLION_CHARACTERS,
            "languages": list(cost.translation_languages),
            "rows": translated.order_by("created_at", "language", "pk"),
        },
    }


def space_report(*, space: Space, period: Period = Period(), top: int = TOP_SESSIONS) -> dict:
    """What a space cost in ``period`` and which sessions drove it (for its owners)."""
    usage = usage_for_space(space=space, period=period)
    totals = usage_totals(usage)
    translation = translation_totals(translation_for_space(space=space, period=period), by_day=True)
    connections = period.filter(Participant.objects.filter(session__space_id=space.pk), "joined_at")
    video_days = _video_minutes_by_day(connections)
    minutes = sum(video_days.values())
    video = video_cost(minutes, settings.LIVEKIT_COST_PER_PARTICIPANT_MINUTE)
    top_sessions = (
        sessions_with_cost(VideoSession.objects.filter(space_id=space.pk), period=period)
        .filter(Q(run_count__gt=0) | Q(participant_minutes__gt=0) | Q(translation_characters__gt=0))
        .order_by("-total_cost", "-created_at")[:top]
    )
    return {
        **totals,
        "transcription_cost": totals["cost"],
        "participant_minutes": minutes,
        "video_cost": video,
        "translation": translation,
        "total_cost": totals["cost"] + translation["cost"] + video,
        "period": period,
        "days": _days_joined(
            usage_by_day(usage), translation=translation["days"], video=video_days
        ),
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


def _days_joined(
    days: list[dict[str, Any]],
    *,
    translation: list[dict[str, Any]],
    video: dict[date, int] | None = None,
) -> list[dict[str, Any]]:
    """Joins the per-day series (each at most one entry per day) on the date: transcription
    ``days`` gain ``translation_characters``, ``translation_cost``, ``video_cost`` when
    ``video`` minutes are given, and ``total_cost``; a day with only one kind of usage gets
    zeros for the others."""
    zero = Decimal("0.0000")
    blank: dict[str, Any] = {"minutes": 0, "cost": zero, "translation_cost": zero}
    blank["translation_characters"] = 0
    if video is not None:
        blank["video_cost"] = zero
    by_date = {d["date"]: {**blank, **d} for d in days}
    for day in translation:
        entry = by_date.setdefault(day["date"], {**blank, "date": day["date"]})
        entry["translation_characters"] = day["characters"]
        entry["translation_cost"] = day["cost"]
    rate = settings.LIVEKIT_COST_PER_PARTICIPANT_MINUTE
    for day, minutes in (video or {}).items():
        entry = by_date.setdefault(day, {**blank, "date": day})
        entry["video_cost"] = video_cost(minutes, rate)
    joined = [by_date[day] for day in sorted(by_date)]
    for entry in joined:
        entry["total_cost"] = entry["cost"] + entry["translation_cost"] + entry.get("video_cost", 0)
    return joined


def space_summary(*, space: Space) -> dict:
    """The last ``SUMMARY_DAYS`` days of a space's usage, for the owners' section of its page."""
    today = timezone.localdate()
    period = Period(start=today - timedelta(days=SUMMARY_DAYS - 1), end=today)
    return space_report(space=space, period=period, top=5)
