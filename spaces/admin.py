from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rooms.errors import DomainError
from spaces.languages import languages_clean
from spaces.models import Space, SpaceInvite, SpaceLimits, SpaceMember, TranscriptionSwitch
from transcription.usage.limits import provider_languages


class SpaceMemberInline(admin.TabularInline):
    model = SpaceMember
    extra = 0
    autocomplete_fields = ["user"]


class SpaceLimitsInline(admin.StackedInline):
    model = SpaceLimits
    extra = 1
    max_num = 1
    verbose_name = gettext_lazy("limits (empty fields use the settings; 0 = unlimited)")
    readonly_fields = ["updated_at"]


class SpaceAdminForm(forms.ModelForm):
    """A space as staff edit it (``SpaceAdmin`` gives the model and fields): its languages pass
    the same rules as on the space page."""

    def clean_languages(self) -> list[str]:
        languages = self.cleaned_data.get("languages")
        if not isinstance(languages, list):
            raise ValidationError(
                _('A list of ISO 639-1 codes, such as ["ru", "en"]; [] for automatic detection.'),
                code="languages_invalid",
            )
        try:
            return languages_clean(languages, supported=provider_languages())
        except DomainError as exc:
            raise ValidationError(exc.message, code=exc.code) from exc


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    form = SpaceAdminForm
    list_display = ["name", "slug", "created_by", "created_at", "languages", "member_count"]
    search_fields = ["name", "slug", "created_by__email"]
    list_filter = ["created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["created_by"]
    inlines = [SpaceLimitsInline, SpaceMemberInline]

    @admin.display(description=gettext_lazy("Members"))
    def member_count(self, obj: Space) -> int:
        return obj.memberships.count()


@admin.register(SpaceMember)
class SpaceMemberAdmin(admin.ModelAdmin):
    list_display = ["space", "user", "role", "joined_at"]
    list_filter = ["role"]
    search_fields = ["space__name", "space__slug", "user__email"]
    autocomplete_fields = ["space", "user"]


@admin.register(SpaceInvite)
class SpaceInviteAdmin(admin.ModelAdmin):
    list_display = [
        "space",
        "created_by",
        "created_at",
        "expires_at",
        "uses",
        "revoked",
    ]
    list_filter = ["revoked", "expires_at"]
    search_fields = ["space__name", "space__slug", "created_by__email"]
    readonly_fields = ["token", "created_at", "uses"]
    autocomplete_fields = ["space", "created_by"]


@admin.register(TranscriptionSwitch)
class TranscriptionSwitchAdmin(admin.ModelAdmin):
    """The kill switch: one row, edited in place (the changelist opens it)."""

    list_display = ["__str__", "message", "updated_at", "updated_by"]
    fields = ["new_runs_disabled", "message", "updated_at", "updated_by"]
    readonly_fields = ["updated_at", "updated_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponseRedirect:
        switch, _ = TranscriptionSwitch.objects.get_or_create(pk=TranscriptionSwitch.SINGLETON_PK)
        return HttpResponseRedirect(
            reverse("admin:spaces_transcriptionswitch_change", args=[switch.pk])
        )

    def save_model(
        self, request: HttpRequest, obj: TranscriptionSwitch, form: object, change: bool
    ) -> None:
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)
