from collections.abc import Callable

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext_lazy as _

from spaces.languages import language_label
from transcription.models import (
    SegmentTranslation,
    TranscriptionRun,
    TranscriptionUsage,
    TranscriptSegment,
    TranslationUsage,
)
from transcription.usage.admin import (
    CreatedRangeFilter,
    LanguageFilter,
    ProviderFilter,
    TranslatedWhenFilter,
    UserEmailFilter,
    changelist_summary,
    duration_column,
    money_column,
    translation_changelist_summary,
    translation_csv_response,
    usage_csv_response,
)
from transcription.usage.chart import day_chart
from transcription.usage.pricing import format_clock


class ReadOnlyAdminMixin:
    """Rows only the system writes (meters, translations): staff read them, nobody edits."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class UsageInline(admin.StackedInline):
    model = TranscriptionUsage
    extra = 0
    can_delete = False
    readonly_fields = [
        "provider",
        "started_at",
        "ended_at",
        "duration_seconds",
        "billed_minutes",
        "cost_per_minute_money",
        "total_cost_money",
        "audio_chunks",
        "audio_bytes",
        "partial_count",
        "final_count",
        "error_count",
        "reconnect_count",
        "finalized",
    ]
    exclude = ["user", "session", "cost_per_minute", "total_cost"]
    cost_per_minute_money = money_column("cost_per_minute", _("cost per minute"))
    total_cost_money = money_column("total_cost", _("total cost"))


class TranslationUsageInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TranslationUsage
    extra = 0
    fields = [
        "language",
        "provider",
        "characters",
        "segments",
        "audio_seconds",
        "cost_per_million_characters_money",
        "total_cost_money",
        "updated_at",
    ]
    readonly_fields = fields
    cost_per_million_characters_money = money_column(
        "cost_per_million_characters", _("cost per million characters")
    )
    total_cost_money = money_column("total_cost", _("cost"))


@admin.register(TranscriptionRun)
class TranscriptionRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "session",
        "mode",
        "provider",
        "status",
        "created_at",
        "ended_at",
        "error_code",
    ]
    list_filter = ["status", "mode", "provider", "created_at"]
    search_fields = ["session__slug", "session__title", "egress_id", "error"]
    readonly_fields = [
        "session",
        "started_by",
        "control_channel",
        "egress_id",
        "egress_status",
        "created_at",
        "started_at",
        "ended_at",
        "heartbeat_at",
        "attempts",
    ]
    exclude = ["ingest_key"]
    date_hierarchy = "created_at"
    inlines = [UsageInline, TranslationUsageInline]


class SegmentTranslationInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SegmentTranslation
    fk_name = "segment"
    extra = 0
    fields = ["language", "text", "source", "source_revision", "updated_at"]
    readonly_fields = fields


@admin.register(TranscriptSegment)
class TranscriptSegmentAdmin(admin.ModelAdmin):
    list_display = ["session", "start_offset", "speaker_name", "text", "language"]
    list_filter = ["language", "created_at"]
    search_fields = ["session__slug", "text", "speaker_name", "utterance_id"]
    readonly_fields = ["session", "run", "participant", "utterance_id", "created_at"]
    list_select_related = ["session"]
    inlines = [SegmentTranslationInline]


@admin.register(SegmentTranslation)
class SegmentTranslationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Stored caption translations, read-only: the live run and re-translation write them."""

    list_display = ["session", "at", "language_name", "text", "source", "stale", "updated_at"]
    list_filter = [LanguageFilter, "source", "updated_at"]
    search_fields = ["session__slug", "session__title", "text", "segment__utterance_id"]
    list_select_related = ["session", "segment"]
    fields = [
        "session",
        "segment",
        "original",
        "language",
        "text",
        "source",
        "source_revision",
        "stale",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields
    # Counting every translation of every session on each page view is not worth it.
    show_full_result_count = False

    @admin.display(description=_("start"), ordering="segment__start_offset")
    def at(self, row: SegmentTranslation) -> str:
        return format_clock(row.segment.start_offset)

    @admin.display(description=_("language"), ordering="language")
    def language_name(self, row: SegmentTranslation) -> str:
        return language_label(row.language)

    @admin.display(description=_("original"))
    def original(self, row: SegmentTranslation) -> str:
        return row.segment.text

    @admin.display(description=_("stale"), boolean=True)
    def stale(self, row: SegmentTranslation) -> bool:
        """The original was corrected after this translation was made."""
        return row.is_stale(row.segment.revision)


class MeterAdminMixin:
    """What the two meter lists share: the created and session columns, totals and a per-day
    chart of exactly the filtered rows (``summarise``, into the template's ``summary_name``),
    and "Export filtered rows as CSV" (``csv_response``)."""

    summary_name: str
    summarise: Callable[[QuerySet], dict]
    csv_response: Callable[[QuerySet], HttpResponse]

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, row: TranscriptionUsage | TranslationUsage) -> str:
        return date_format(timezone.localtime(row.created_at), "SHORT_DATETIME_FORMAT")

    @admin.display(description=_("session"), ordering="session__title")
    def session_title(self, row: TranscriptionUsage | TranslationUsage) -> str:
        return row.session.title

    def _url_name(self, view: str) -> str:
        meta = self.model._meta  # type: ignore[attr-defined]
        return f"{meta.app_label}_{meta.model_name}_{view}"

    def get_urls(self) -> list:
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_filtered_csv),  # type: ignore[attr-defined]
            name=self._url_name("export"),
        )
        return [export, *super().get_urls()]  # type: ignore[misc]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)  # type: ignore[misc]
        context = getattr(response, "context_data", None)
        if context is not None and "cl" in context:
            summary = self.summarise(context["cl"].queryset)
            context[self.summary_name] = summary
            context["usage_chart"] = day_chart(summary["days"])
            context["export_query"] = request.GET.urlencode()
        return response

    def export_filtered_csv(self, request: HttpRequest) -> HttpResponse:
        """Every row the changelist's current filters select, as CSV."""
        if not self.has_view_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)  # type: ignore[attr-defined]
        except IncorrectLookupParameters:
            # The changelist answers unknown filters the same way: back to the list, ?e=1.
            changelist_url = reverse(f"admin:{self._url_name('changelist')}")
            return redirect(f"{changelist_url}?e=1")
        return self.csv_response(changelist.queryset)


@admin.register(TranscriptionUsage)
class TranscriptionUsageAdmin(MeterAdminMixin, admin.ModelAdmin):
    """Usage rows with totals, a per-day chart and the top sessions for the filtered rows."""

    change_list_template = "admin/usage/change_list.html"
    # The cost first, next to what it is for, and few columns: the list fits a laptop screen
    # without scrolling sideways beside the admin's menu (space and provider: the filters and
    # the row's page; the space also in "Sessions that drove the cost").
    list_display = [
        "created",
        "session_title",
        "total_cost_money",
        "billed_minutes",
        "duration",
        "user",
        "finalized",
    ]
    list_display_links = ["created"]
    list_filter = [
        CreatedRangeFilter,
        ("session__space", admin.RelatedFieldListFilter),
        UserEmailFilter,
        ProviderFilter,
        "finalized",
    ]
    search_fields = ["session__slug", "session__title", "session__space__slug", "user__email"]
    readonly_fields = [
        *(
            f"{f.name}_money" if f.name in ("cost_per_minute", "total_cost") else f.name
            for f in TranscriptionUsage._meta.fields
        )
    ]
    exclude = ["cost_per_minute", "total_cost"]
    date_hierarchy = "created_at"
    list_select_related = ["session", "user"]
    actions = ["export_csv"]
    # "N of M rows" would count the whole table (a million rows) on every page view.
    show_full_result_count = False

    total_cost_money = money_column("total_cost", _("cost"))
    cost_per_minute_money = money_column("cost_per_minute", _("cost per minute"))
    duration = duration_column

    summary_name = "usage_summary"
    summarise = staticmethod(changelist_summary)
    csv_response = staticmethod(usage_csv_response)

    @admin.action(description=_("Export selected usage as CSV"))
    def export_csv(
        self, request: HttpRequest, queryset: QuerySet[TranscriptionUsage]
    ) -> HttpResponse:
        return usage_csv_response(queryset)


@admin.register(TranslationUsage)
class TranslationUsageAdmin(MeterAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The translation meter with totals per language, a per-day chart and the top sessions
    for the filtered rows, next to the transcription usage list."""

    change_list_template = "admin/usage/translation_change_list.html"
    list_display = [
        "created",
        "session_title",
        "language_name",
        "total_cost_money",
        "characters_count",
        "provider",
        "user",
    ]
    list_display_links = ["created"]
    list_filter = [
        CreatedRangeFilter,
        ("session__space", admin.RelatedFieldListFilter),
        UserEmailFilter,
        LanguageFilter,
        "provider",
        TranslatedWhenFilter,
    ]
    search_fields = ["session__slug", "session__title", "session__space__slug", "user__email"]
    readonly_fields = [
        f"{f.name}_money" if f.name in ("cost_per_million_characters", "total_cost") else f.name
        for f in TranslationUsage._meta.fields
    ]
    exclude = ["cost_per_million_characters", "total_cost"]
    date_hierarchy = "created_at"
    list_select_related = ["session", "user"]
    actions = ["export_csv"]
    show_full_result_count = False

    total_cost_money = money_column("total_cost", _("cost"))
    cost_per_million_characters_money = money_column(
        "cost_per_million_characters", _("cost per million characters")
    )

    @admin.display(description=_("language"), ordering="language")
    def language_name(self, row: TranslationUsage) -> str:
        return language_label(row.language)

    @admin.display(description=_("characters"), ordering="characters")
    def characters_count(self, row: TranslationUsage) -> str:
        return number_format(row.characters, force_grouping=True)

    summary_name = "translation_summary"
    summarise = staticmethod(translation_changelist_summary)
    csv_response = staticmethod(translation_csv_response)

    @admin.action(description=_("Export selected translation usage as CSV"))
    def export_csv(
        self, request: HttpRequest, queryset: QuerySet[TranslationUsage]
    ) -> HttpResponse:
        return translation_csv_response(queryset)
