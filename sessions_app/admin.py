from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from sessions_app.analysis.services import analysis_request
from sessions_app.models import Participant, SessionAnalysis, Task, VideoSession
from transcription.usage_admin import SessionCostAdminMixin


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    fields = ["name", "identity", "role", "joined_at", "left_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(VideoSession)
class VideoSessionAdmin(SessionCostAdminMixin, admin.ModelAdmin):
    list_display = [
        "title",
        "slug",
        "space",
        "status",
        "created_by",
        "created_at",
        "ended_at",
        "cost_total",
    ]
    list_filter = ["status", "created_at"]
    search_fields = ["title", "slug", "space__name", "created_by__email"]
    readonly_fields = [
        "slug",
        "created_at",
        "started_at",
        "ended_at",
        "last_activity_at",
        "cost_breakdown",
    ]
    autocomplete_fields = ["space", "created_by"]
    date_hierarchy = "created_at"
    inlines = [ParticipantInline]


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ["name", "identity", "session", "role", "joined_at", "left_at"]
    list_filter = ["role", "joined_at"]
    search_fields = ["name", "identity", "session__slug", "user__email"]
    autocomplete_fields = ["session", "user"]


@admin.register(SessionAnalysis)
class SessionAnalysisAdmin(admin.ModelAdmin):
    list_display = ["session", "status", "provider", "attempts", "created_at", "finished_at"]
    list_filter = ["status", "provider"]
    search_fields = ["session__title", "session__slug", "summary"]
    list_select_related = ["session"]
    readonly_fields = [
        "session",
        "status",
        "provider",
        "summary",
        "topics",
        "action_items",
        "speaker_stats",
        "error",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
    ]
    actions = ["rerun"]

    @admin.action(description="Re-run the analysis of the selected sessions")
    def rerun(self, request: HttpRequest, queryset: QuerySet[SessionAnalysis]) -> None:
        count = 0
        for analysis in queryset.select_related("session"):
            analysis_request(session=analysis.session)
            count += 1
        self.message_user(request, f"{count} analyses queued again.", messages.SUCCESS)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["title", "space", "session", "assignee", "owner_name", "due_phrase", "done"]
    list_filter = ["done", "created_at"]
    search_fields = ["title", "owner_name", "space__name", "session__slug"]
    list_select_related = ["space", "session", "assignee"]
    autocomplete_fields = ["space", "assignee", "done_by"]
    raw_id_fields = ["session", "analysis"]
