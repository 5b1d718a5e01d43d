from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from rooms.errors import DomainError
from sessions_app.analysis.services import analysis_request
from sessions_app.models import Participant, SessionAnalysis, Task, VideoSession
from spaces.languages import language_choices, language_label, languages_clean
from transcription.usage.admin import SessionCostAdminMixin
from transcription.usage.pricing import format_clock


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    fields = ["name", "identity", "role", "joined_at", "left_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True


class VideoSessionForm(forms.ModelForm):
    """Languages as choices, not JSON: none ticked means "detect automatically". Staff may
    pick a language this server cannot transcribe (starting transcription then refuses)."""

    languages = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label=gettext_lazy("Languages"),
        help_text=gettext_lazy(
            "None ticked: the speech engine detects the language. Several: the languages "
            "expected, between which it switches."
        ),
    )

    class Meta:
        model = VideoSession
        fields = ["title", "space", "created_by", "status", "languages", "peer_to_peer"]
        help_texts = {
            "peer_to_peer": gettext_lazy(
                "With LiveKit: the browsers connect to each other directly instead of through "
                "the video server. Without LiveKit every session is peer to peer, whatever "
                "this says."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["languages"].choices = language_choices(extra=self.instance.languages or ())

    def clean_languages(self) -> list[str]:
        try:
            return languages_clean(list(self.cleaned_data["languages"]), supported=None)
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc


@admin.register(VideoSession)
class VideoSessionAdmin(SessionCostAdminMixin, admin.ModelAdmin):
    form = VideoSessionForm
    list_display = [
        "title",
        "slug",
        "space",
        "status",
        "language_names",
        "video",
        "created_by",
        "created_at",
        "ended_at",
        "cost_total",
    ]
    list_filter = ["status", "created_at"]
    search_fields = ["title", "slug", "space__name", "created_by__email"]
    readonly_fields = [
        "slug",
        "video",
        "created_at",
        "started_at",
        "ended_at",
        "last_activity_at",
        "cost_breakdown",
    ]
    autocomplete_fields = ["space", "created_by"]
    date_hierarchy = "created_at"
    inlines = [ParticipantInline]

    @admin.display(description=gettext_lazy("languages"))
    def language_names(self, session: VideoSession) -> str:
        return ", ".join(language_label(code) for code in session.languages) or _("detect")

    @admin.display(description=gettext_lazy("video"))
    def video(self, session: VideoSession) -> str:
        """How its video actually flows (the checkbox alone does not say without LiveKit)."""
        if session.uses_livekit:
            return _("through the LiveKit video server")
        return _("peer-to-peer") if session.peer_to_peer else _("peer-to-peer (LiveKit is off)")


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
        "topics_list",
        "action_items_list",
        "speaker_stats_table",
        "error",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "transcript_edited_at",
    ]
    exclude = ["topics", "action_items", "speaker_stats"]
    actions = ["rerun"]

    @admin.display(description=gettext_lazy("topics"))
    def topics_list(self, analysis: SessionAnalysis) -> str:
        return ", ".join(str(topic) for topic in analysis.topics or []) or "—"

    @admin.display(description=gettext_lazy("action items"))
    def action_items_list(self, analysis: SessionAnalysis) -> str:
        items = []
        for item in analysis.action_items or []:
            item = item if isinstance(item, dict) else {"text": item}
            extra = [
                value
                for value in (
                    item.get("owner"),
                    item.get("due"),
                    format_clock(item["start"]) if item.get("start") is not None else None,
                )
                if value
            ]
            items.append(
                format_html(
                    '{} <span class="quiet">{}</span>',
                    item.get("text", ""),
                    " · ".join(str(v) for v in extra),
                )
                if extra
                else format_html("{}", item.get("text", ""))
            )
        return _lines(items)

    @admin.display(description=gettext_lazy("speaker stats"))
    def speaker_stats_table(self, analysis: SessionAnalysis) -> str:
        stats = [s for s in analysis.speaker_stats or [] if isinstance(s, dict)]
        if not stats:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    s.get("name") or s.get("identity") or _("Room"),
                    format_clock(s.get("talk_seconds")),
                    s.get("words", ""),
                    s.get("wpm", ""),
                    s.get("turns", ""),
                )
                for s in stats
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            _("Speaker"),
            _("Talk time"),
            _("Words"),
            _("Words/min"),
            _("Turns"),
            rows,
        )

    @admin.action(description=gettext_lazy("Re-run the analysis of the selected sessions"))
    def rerun(self, request: HttpRequest, queryset: QuerySet[SessionAnalysis]) -> None:
        count = 0
        for analysis in queryset.select_related("session"):
            analysis_request(session=analysis.session)
            count += 1
        message = ngettext(
            "%(count)d analysis queued again.", "%(count)d analyses queued again.", count
        ) % {"count": count}
        self.message_user(request, message, messages.SUCCESS)


def _lines(items: Iterable[str]) -> str:
    """One item per line, each escaped (unless it is already safe HTML)."""
    items = list(items)
    if not items:
        return "—"
    return format_html_join(mark_safe("<br>"), "{}", ((item,) for item in items))


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    """Tasks and proposals. A task added here is ACCEPTED (the model's default): an admin's
    decision, like a member's."""

    list_display = [
        "title",
        "status",
        "space",
        "session",
        "assignee",
        "owner_name",
        "due_phrase",
        "low_confidence",
        "done",
    ]
    list_filter = ["status", "done", "low_confidence", "created_at"]
    search_fields = ["title", "proposed_title", "owner_name", "space__name", "session__slug"]
    list_select_related = ["space", "session", "assignee"]
    autocomplete_fields = ["space", "assignee", "done_by", "accepted_by", "dismissed_by"]
    raw_id_fields = ["session", "analysis"]
    readonly_fields = ["proposed_title", "low_confidence"]
