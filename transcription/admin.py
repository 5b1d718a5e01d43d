from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from transcription.models import TranscriptionRun, TranscriptionUsage, TranscriptSegment
from transcription.usage.admin import (
    CreatedRangeFilter,
    ProviderFilter,
    UserEmailFilter,
    changelist_summary,
    duration_column,
    money_column,
    usage_csv_response,
)
from transcription.usage.chart import day_chart


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
    inlines = [UsageInline]


@admin.register(TranscriptSegment)
class TranscriptSegmentAdmin(admin.ModelAdmin):
    list_display = ["session", "start_offset", "speaker_name", "text", "language"]
    list_filter = ["language", "created_at"]
    search_fields = ["session__slug", "text", "speaker_name", "utterance_id"]
    readonly_fields = ["session", "run", "participant", "utterance_id", "created_at"]
    list_select_related = ["session"]


@admin.register(TranscriptionUsage)
class TranscriptionUsageAdmin(admin.ModelAdmin):
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

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, row: TranscriptionUsage) -> str:
        return date_format(timezone.localtime(row.created_at), "SHORT_DATETIME_FORMAT")

    @admin.display(description=_("session"), ordering="session__title")
    def session_title(self, row: TranscriptionUsage) -> str:
        return row.session.title

    def get_urls(self) -> list:
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_filtered_csv),
            name="transcription_transcriptionusage_export",
        )
        return [export, *super().get_urls()]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and "cl" in context:
            summary = changelist_summary(context["cl"].queryset)
            context["usage_summary"] = summary
            context["usage_chart"] = day_chart(summary["days"])
            context["export_query"] = request.GET.urlencode()
        return response

    def export_filtered_csv(self, request: HttpRequest) -> HttpResponse:
        """Every row the changelist's current filters select, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            # The changelist answers unknown filters the same way: back to the list, ?e=1.
            return redirect(f"{reverse('admin:transcription_transcriptionusage_changelist')}?e=1")
        return usage_csv_response(changelist.queryset)

    @admin.action(description=_("Export selected usage as CSV"))
    def export_csv(
        self, request: HttpRequest, queryset: QuerySet[TranscriptionUsage]
    ) -> HttpResponse:
        return usage_csv_response(queryset)
