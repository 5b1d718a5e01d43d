from django.contrib import admin

from transcription.models import TranscriptionRun, TranscriptionUsage, TranscriptSegment


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
        "cost_per_minute",
        "total_cost",
        "audio_chunks",
        "audio_bytes",
        "partial_count",
        "final_count",
        "error_count",
        "reconnect_count",
        "finalized",
    ]
    exclude = ["user", "session"]


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
    list_display = [
        "run",
        "session",
        "user",
        "provider",
        "duration_seconds",
        "billed_minutes",
        "total_cost",
        "finalized",
        "created_at",
    ]
    list_filter = ["provider", "finalized", "created_at"]
    search_fields = ["session__slug", "session__title", "user__email"]
    readonly_fields = [f.name for f in TranscriptionUsage._meta.fields]
    date_hierarchy = "created_at"
    list_select_related = ["session", "user", "run"]
