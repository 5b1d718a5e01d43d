from django.contrib import admin

from sessions_app.models import Participant, VideoSession


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    fields = ["name", "identity", "role", "joined_at", "left_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(VideoSession)
class VideoSessionAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "slug",
        "space",
        "status",
        "created_by",
        "created_at",
        "ended_at",
    ]
    list_filter = ["status", "created_at"]
    search_fields = ["title", "slug", "space__name", "created_by__email"]
    readonly_fields = [
        "slug",
        "created_at",
        "started_at",
        "ended_at",
        "last_activity_at",
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
