"""Admin pieces for cost reporting: a date-range filter, CSV export, the session cost column.

The usage changelist (``transcription/admin.py``) shows totals, a per-day chart and the sessions
that drove the cost for exactly the rows its filters select, so a staff member answers "what
did space X cost last month, and which sessions drove it" on one screen; with the translation
of the same runs next to it. The translation usage changelist does the same for the translation
meter (characters per target language).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.formats import number_format
from django.utils.functional import Promise
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from rooms.money import format_money
from sessions_app.models import VideoSession
from transcription.models import TranscriptionUsage, TranslationUsage
from transcription.usage import reports as usage
from transcription.usage.pricing import format_clock

CSV_COLUMNS = [
    ("created_at", "created_at"),
    ("run_id", "run"),
    ("session__space__slug", "space"),
    ("session__slug", "session"),
    ("session__title", "session_title"),
    ("user__email", "user"),
    ("provider", "provider"),
    ("started_at", "started_at"),
    ("ended_at", "ended_at"),
    ("duration_seconds", "duration_seconds"),
    ("billed_minutes", "billed_minutes"),
    ("cost_per_minute", "cost_per_minute"),
    ("total_cost", "total_cost"),
    ("finalized", "finalized"),
]
TRANSLATION_CSV_COLUMNS = [
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
    ("run_id", "run"),
    ("session__space__slug", "space"),
    ("session__slug", "session"),
    ("session__title", "session_title"),
    ("user__email", "user"),
    ("language", "language"),
    ("provider", "provider"),
    ("characters", "characters"),
    ("segments", "segments"),
    ("audio_seconds", "audio_seconds"),
    ("cost_per_million_characters", "cost_per_million_characters"),
    ("total_cost", "total_cost"),
]
TOP_SESSIONS = 10


class CreatedRangeFilter(admin.ListFilter):
    """``created_at`` between two days (inclusive), typed as YYYY-MM-DD; bad input is ignored
    with a message in the filter box (the admin's own filters behave the same way)."""

    title = _("created between")
    template = "admin/usage/date_range_filter.html"
    parameter_from = "created_from"
    parameter_to = "created_to"

    def __init__(self, request: HttpRequest, params: dict, model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        raw_from = params.pop(self.parameter_from, [""])
        raw_to = params.pop(self.parameter_to, [""])
        self.raw_from = (raw_from[-1] if isinstance(raw_from, list) else raw_from) or ""
        self.raw_to = (raw_to[-1] if isinstance(raw_to, list) else raw_to) or ""
        self.other_params = {
            key: value
            for key, value in request.GET.items()
            if key not in self.expected_parameters()
        }
        try:
            self.period = usage.period_parse(start=self.raw_from, end=self.raw_to)
            self.error = ""
        except usage.InvalidPeriod as exc:
            self.period = usage.Period()
            self.error = exc.message

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return [self.parameter_from, self.parameter_to]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return self.period.filter(queryset, "created_at")

    def choices(self, changelist: Any) -> list:
        return []


class _InputFilter(admin.ListFilter):
    """A typed value instead of a list of choices: listing every user or provider would scan
    the whole usage table (``SELECT DISTINCT``) on each page view."""

    template = "admin/usage/input_filter.html"
    parameter_name = ""
    lookup = ""

    def __init__(self, request: HttpRequest, params: dict, model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        raw = params.pop(self.parameter_name, [""])
        self.value = ((raw[-1] if isinstance(raw, list) else raw) or "").strip()
        self.other_params = {
            key: value for key, value in request.GET.items() if key != self.parameter_name
        }

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if not self.value:
            return queryset
        return queryset.filter(**{self.lookup: self.value})

    def choices(self, changelist: Any) -> list:
        return []


class UserEmailFilter(_InputFilter):
    title = _("user email")
    parameter_name = "user_email"
    lookup = "user__email__iexact"


class ProviderFilter(_InputFilter):
    title = _("provider")
    parameter_name = "provider_name"
    lookup = "provider__iexact"


class LanguageFilter(_InputFilter):
    title = _("language")
    parameter_name = "language_code"
    lookup = "language__iexact"


class TranslatedWhenFilter(admin.SimpleListFilter):
    """Live translation (a run's meter) or re-translation after the session (no run)."""

    title = _("translation time")
    parameter_name = "when"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Promise]]:
        return [("live", _("live, during a run")), ("after", _("after the session"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("live", "after"):
            return queryset.filter(run__isnull=self.value() == "after")
        return queryset


def changelist_summary(rows: QuerySet[TranscriptionUsage]) -> dict[str, Any]:
    """Totals, the per-day series and the top sessions of the changelist's filtered rows."""
    rows = rows.order_by()
    drivers = list(
        rows.values("session_id")
        .annotate(rows_cost=Sum("total_cost"), rows_minutes=Sum("billed_minutes"))
        .order_by("-rows_cost", "session_id")[:TOP_SESSIONS]
    )
    by_id = {
        s.pk: s
        for s in usage.sessions_with_cost(
            VideoSession.objects.filter(pk__in=[d["session_id"] for d in drivers])
        ).select_related("space")
    }
    top = [{**d, "session": by_id[d["session_id"]]} for d in drivers]
    translation = TranslationUsage.objects.filter(run_id__in=rows.values("run_id"))
    return {
        "totals": usage.usage_totals(rows),
        "days": usage.usage_by_day(rows),
        "top": top,
        "translation": usage.translation_totals(translation),
    }


def translation_changelist_summary(rows: QuerySet[TranslationUsage]) -> dict[str, Any]:
    """Totals, per language and per day, and the top sessions of the filtered translation
    rows."""
    rows = rows.order_by()
    drivers = list(
        rows.values("session_id")
        .annotate(rows_cost=Sum("total_cost"), rows_characters=Sum("characters"))
        .order_by("-rows_cost", "session_id")[:TOP_SESSIONS]
    )
    by_id = {
        s.pk: s
        for s in usage.sessions_with_cost(
            VideoSession.objects.filter(pk__in=[d["session_id"] for d in drivers])
        ).select_related("space")
    }
    totals = usage.translation_totals(rows, by_day=True)
    return {
        "totals": totals,
        "sessions": rows.values("session_id").distinct().count(),
        # The day chart reads "cost" and "minutes" (none here: characters are in the title).
        "days": [{**d, "minutes": 0} for d in totals["days"]],
        "top": [{**d, "session": by_id[d["session_id"]]} for d in drivers],
    }


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(rows: QuerySet, columns: list[tuple[str, str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([header for _, header in columns])
    fields = [field for field, _ in columns]
    for values in rows.order_by("created_at", "pk").values_list(*fields).iterator(chunk_size=2000):
        yield writer.writerow(["" if v is None else v for v in values])


def _csv_response(
    rows: QuerySet, columns: list[tuple[str, str]], name: str
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        _csv_lines(rows, columns), content_type="text/csv; charset=utf-8"
    )
    filename = f"{name}-{date.today().isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def usage_csv_response(rows: QuerySet[TranscriptionUsage]) -> StreamingHttpResponse:
    """The rows as CSV (one line per run's usage), streamed so a large export stays small."""
    return _csv_response(rows, CSV_COLUMNS, "transcription-usage")


def translation_csv_response(rows: QuerySet[TranslationUsage]) -> StreamingHttpResponse:
    """Translation meter rows as CSV (one line per run and language), streamed."""
    return _csv_response(rows, TRANSLATION_CSV_COLUMNS, "translation-usage")


def characters_text(characters: int) -> str:
    """``12400`` → ``12,400 characters`` (``12 400 символов``): grouped as the language groups."""
    return ngettext("%(count)s character", "%(count)s characters", characters) % {
        "count": number_format(characters, force_grouping=True)
    }


class SessionCostAdminMixin:
    """For ``VideoSessionAdmin``: each session's full cost as a sortable column and a field."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[VideoSession]:
        return usage.sessions_with_cost(super().get_queryset(request))  # type: ignore[misc]

    @admin.display(
        description=_("cost (transcription + translation + video est.)"), ordering="total_cost"
    )
    def cost_total(self, session: VideoSession) -> str:
        return format_money(session.total_cost)  # type: ignore[attr-defined]

    @admin.display(description=_("cost"))
    def cost_breakdown(self, session: VideoSession) -> str:
        if session.pk is None:
            return "—"
        cost = usage.session_cost(session=session)
        runs = ngettext("%(count)d run", "%(count)d runs", cost.runs) % {"count": cost.runs}
        people = ngettext(
            "%(count)d participant-minute",
            "%(count)d participant-minutes",
            cost.participant_minutes,
        ) % {"count": cost.participant_minutes}
        if cost.uses_livekit:
            video = gettext("%(cost)s video estimate (%(people)s)")
        else:
            video = gettext("%(cost)s video estimate (%(people)s, peer-to-peer: no video server)")
        text = gettext(
            "%(total)s total = %(transcription)s transcription (%(minutes)s min, %(runs)s) + "
            "%(video)s"
        ) % {
            "total": format_money(cost.total_cost),
            "transcription": format_money(cost.transcription_cost),
            "minutes": cost.transcription_minutes,
            "runs": runs,
            "video": video % {"cost": format_money(cost.video_cost), "people": people},
        }
        languages = "; ".join(
            gettext("%(language)s: %(characters)s, %(cost)s")
            % {
                "language": x["name"],
                "characters": characters_text(x["characters"]),
                "cost": format_money(x["cost"]),
            }
            for x in cost.translation_languages
        )
        translation = gettext("%(cost)s translation (%(languages)s)") % {
            "cost": format_money(cost.translation_cost),
            "languages": languages or gettext("nothing translated"),
        }
        return f"{text} + {translation}"


def money_column(field: str, description: str | Promise) -> Any:
    """An admin column (or read-only field) that writes ``field`` as money, sortable by it."""

    @admin.display(description=description, ordering=field)
    def column(self: Any, row: Any) -> str:
        return format_money(getattr(row, field))

    column.__name__ = f"{field}_money"
    return column


@admin.display(description=_("metered"), ordering="duration_seconds")
def duration_column(self: Any, row: TranscriptionUsage) -> str:
    return format_clock(row.duration_seconds)
