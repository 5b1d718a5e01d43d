"""Transcription limits (SPEC §7): checked when a run starts, and budgets for running runs.

- ``run_start_check`` runs inside ``run_start``'s transaction, after ``starter_lock`` locked
  the starting user's row, so two starts racing (two tabs, two Daphne processes) count each
  other's runs: the per-user limit holds under concurrency because PostgreSQL serialises them
  on that lock.
- ``runs_budget`` tells running pipelines how much audio they may still send: the lower of
  the run's own minute limit and what is left of its space's minutes this calendar month
  (UTC), counting the other runs as of their last usage checkpoint. The pipeline compares its
  in-memory byte counter with it, so there is no per-frame database work; the budget is
  refreshed with every usage checkpoint, so concurrent runs of one space overshoot the month by
  at most one checkpoint interval each.

Minutes are billed minutes (``ceil(seconds / 60)`` per run), the figure usage reports show.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Sum
from django.utils import formats, timezone, translation
from django.utils.translation import get_language_info, ngettext
from django.utils.translation import gettext as _

from identity.models import User
from rooms.errors import Conflict, Forbidden, LimitExceeded
from sessions_app.models import VideoSession
from spaces.limits import Limits, limits_for_space, limits_resolve, new_runs_disabled_message
from spaces.models import SpaceLimits
from transcription.live.ingest import BYTES_PER_SECOND
from transcription.models import TranscriptionRun, TranscriptionUsage

LIMIT_REACHED = "limit_reached"


def month_start(now: datetime | None = None) -> datetime:
    """The first instant of the current calendar month (UTC)."""
    now = (now or timezone.now()).astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime | None = None) -> datetime:
    start = month_start(now)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def space_month_minutes(*, space_id: int) -> int:
    """Billed transcription minutes of the space's runs created this calendar month."""
    used = TranscriptionUsage.objects.filter(
        session__space_id=space_id, created_at__gte=month_start()
    ).aggregate(minutes=Sum("billed_minutes"))["minutes"]
    return used or 0


def starter_lock(*, by: User) -> None:
    """Lock ``by``'s row until the caller's transaction ends: the starts of one user then run
    one after the other, and each sees the runs the previous one inserted."""
    User.objects.select_for_update().only("pk").get(pk=by.pk)


ENGLISH_ONLY = frozenset({"en"})


def provider_languages(provider: str | None = None) -> frozenset[str] | None:
    """The languages the speech provider (default ``settings.STT_PROVIDER``) can transcribe;
    ``None`` when it takes any.

    Gladia takes any. The offline engine's default model (Whisper ``tiny.en``) is English
    only; with a multilingual model (``OFFLINE_STT_MULTILINGUAL_MODEL_DIR``), or a model an
    operator chose (``OFFLINE_STT_MODEL_DIR``, perhaps multilingual), it takes any. A custom
    ``module:Class`` engine may list its own in a ``supported_languages`` attribute.
    """
    provider = provider or settings.STT_PROVIDER
    if provider == "local":
        chosen = settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR or settings.OFFLINE_STT_MODEL_DIR
        return None if chosen else ENGLISH_ONLY
    if ":" in provider:
        module_name, _, class_name = provider.partition(":")
        try:
            engine = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            return None
        supported = getattr(engine, "supported_languages", None)
        return frozenset(supported) if supported is not None else None
    return None


def language_check(*, session: VideoSession) -> None:
    """Refuse to transcribe a session whose language the provider cannot do
    (``Conflict``, ``language_unsupported``). Auto-detect (no language) is always allowed."""
    supported = provider_languages()
    if supported is None:
        return
    missing = [code for code in session.languages or [] if code not in supported]
    if missing:
        raise Conflict(
            _(
                "This server's speech engine transcribes %(supported)s only, and this session "
                "is in %(languages)s. Create the session in %(supported)s, or ask the "
                "administrator to configure Gladia (GLADIA_API_KEY) or a multilingual offline "
                "model."
            )
            % {
                "supported": ", ".join(language_name(code) for code in sorted(supported)),
                "languages": ", ".join(language_name(code) for code in missing),
            },
            code="language_unsupported",
        )


def language_name(code: str) -> str:
    """``"fr"`` → ``"French"`` in the active language (Django's language names; the code
    itself when unknown)."""
    try:
        return str(get_language_info(code)["name_translated"])
    except KeyError:
        return code


def run_start_check(*, session: VideoSession, by: User) -> Limits:
    """Refuse a new run the limits forbid; call it inside the start's transaction, after
    ``starter_lock``.

    Raises ``Forbidden`` (``transcription_disabled``, ``month_minutes_used``),
    ``Conflict`` (``language_unsupported``) or ``LimitExceeded`` (``too_many_runs``).
    """
    disabled = new_runs_disabled_message()
    if disabled is not None:
        raise Forbidden(disabled, code="transcription_disabled")
    language_check(session=session)
    limits = limits_for_space(space_id=session.space_id)
    if limits.max_active_runs_per_user:
        active = TranscriptionRun.objects.filter(
            started_by=by, status__in=TranscriptionRun.UNFINISHED
        ).count()
        if active >= limits.max_active_runs_per_user:
            raise LimitExceeded(
                ngettext(
                    "You already have %(active)d transcription running; the limit is "
                    "%(limit)d. Stop one of them, then start this one.",
                    "You already have %(active)d transcriptions running; the limit is "
                    "%(limit)d. Stop one of them, then start this one.",
                    active,
                )
                % {"active": active, "limit": limits.max_active_runs_per_user},
                code="too_many_runs",
            )
    if limits.max_month_minutes:
        used = space_month_minutes(space_id=session.space_id)
        if used >= limits.max_month_minutes:
            raise Forbidden(
                ngettext(
                    "This space has used its %(minutes)d transcription minute for this month. "
                    "Transcription can start again on %(date)s, or a space owner can ask the "
                    "Rooms staff to raise the limit.",
                    "This space has used its %(minutes)d transcription minutes for this month. "
                    "Transcription can start again on %(date)s, or a space owner can ask the "
                    "Rooms staff to raise the limit.",
                    limits.max_month_minutes,
                )
                % {
                    "minutes": limits.max_month_minutes,
                    "date": formats.date_format(next_month_start().date(), "DATE_FORMAT"),
                },
                code="month_minutes_used",
            )
    return limits


@dataclass(frozen=True, slots=True)
class RunBudget:
    """What a running run may still do. ``max_bytes`` None: no minute limit applies."""

    max_bytes: int | None
    message: str
    max_audio_senders: int


def _budget(limits: Limits, month_used_by_others: int) -> RunBudget:
    """The run's budget. Its stop message is stored on the run in English, whatever language
    the thread computing it was left in (the admin and the API show it so)."""
    candidates: list[tuple[int, str]] = []
    with translation.override("en"):
        if limits.max_run_minutes:
            candidates.append(
                (
                    limits.max_run_minutes,
                    ngettext(
                        "Transcription stopped: a run may last %(minutes)d minute. Start it "
                        "again to go on.",
                        "Transcription stopped: a run may last %(minutes)d minutes. Start it "
                        "again to go on.",
                        limits.max_run_minutes,
                    )
                    % {"minutes": limits.max_run_minutes},
                )
            )
        if limits.max_month_minutes:
            candidates.append(
                (
                    max(0, limits.max_month_minutes - month_used_by_others),
                    ngettext(
                        "Transcription stopped: this space has used its %(minutes)d "
                        "transcription minute for this month. A space owner can ask the Rooms "
                        "staff to raise the limit.",
                        "Transcription stopped: this space has used its %(minutes)d "
                        "transcription minutes for this month. A space owner can ask the Rooms "
                        "staff to raise the limit.",
                        limits.max_month_minutes,
                    )
                    % {"minutes": limits.max_month_minutes},
                )
            )
    if not candidates:
        return RunBudget(None, "", limits.max_audio_senders)
    minutes, message = min(candidates, key=lambda c: c[0])
    return RunBudget(int(minutes * 60 * BYTES_PER_SECOND), message, limits.max_audio_senders)


def runs_budget(*, run_ids: list[int]) -> dict[int, RunBudget]:
    """The budget of each run in ``run_ids`` (a handful of queries for all of them)."""
    runs = dict(
        TranscriptionRun.objects.filter(pk__in=run_ids).values_list("pk", "session__space_id")
    )
    spaces = set(runs.values())
    overrides = {o.space_id: o for o in SpaceLimits.objects.filter(space_id__in=spaces)}
    limits = {space_id: limits_resolve(overrides.get(space_id)) for space_id in spaces}
    metered = {s for s in spaces if limits[s].max_month_minutes}
    by_space: dict[int, int] = {}
    own: dict[int, int] = {}
    if metered:
        rows = TranscriptionUsage.objects.filter(
            session__space_id__in=metered, created_at__gte=month_start()
        )
        by_space = dict(
            rows.order_by()
            .values("session__space_id")
            .annotate(minutes=Sum("billed_minutes"))
            .values_list("session__space_id", "minutes")
        )
        own = dict(rows.filter(run_id__in=runs).values_list("run_id", "billed_minutes"))
    return {
        run_id: _budget(limits[space_id], by_space.get(space_id, 0) - own.get(run_id, 0))
        for run_id, space_id in runs.items()
    }
