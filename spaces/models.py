import secrets

from django.conf import settings
from django.db import models
from django.utils import formats, timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _


def new_invite_token() -> str:
    return secrets.token_urlsafe(24)


def default_languages() -> list[str]:
    return ["en"]


class Space(models.Model):
    slug = models.SlugField(
        _("address"),
        max_length=80,
        unique=True,
        help_text=_("The space's part of its page address."),
    )
    name = models.CharField(pgettext_lazy("space", "name"), max_length=120)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="spaces_created",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="SpaceMember",
        related_name="spaces",
        verbose_name=_("members"),
    )
    # The languages spoken in this space's sessions unless a session says otherwise, as ISO
    # 639-1 codes: one fixed language, several expected ones (the provider switches between
    # them: Gladia's code_switching), or none for automatic detection. Written through
    # ``spaces.services.space_languages_set``, which checks them.
    languages = models.JSONField(
        _("transcription languages"),
        default=default_languages,
        db_default=["en"],
        blank=True,
        help_text=_(
            "The default of new sessions, as ISO 639-1 codes: none for automatic detection, "
            "one for a fixed language, several for the languages the speech provider switches "
            "between."
        ),
    )

    class Meta:
        verbose_name = _("space")
        verbose_name_plural = _("spaces")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SpaceMember(models.Model):
    class Role(models.TextChoices):
        OWNER = "OWNER", _("Owner")
        MEMBER = "MEMBER", _("Member")

    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("space")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    role = models.CharField(_("role"), max_length=8, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(pgettext_lazy("space member", "joined"), default=timezone.now)

    class Meta:
        verbose_name = _("space member")
        verbose_name_plural = _("space members")
        constraints = [
            models.UniqueConstraint(fields=["space", "user"], name="space_member_unique")
        ]
        indexes = [models.Index(fields=["user", "space"])]
        ordering = ["joined_at"]

    def __str__(self) -> str:
        return gettext("%(user)s in %(space)s (%(role)s)") % {
            "user": self.user,
            "space": self.space,
            "role": self.get_role_display(),
        }

    @property
    def is_owner(self) -> bool:
        return self.role == self.Role.OWNER


class SpaceInvite(models.Model):
    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, related_name="invites", verbose_name=_("space")
    )
    token = models.CharField(
        _("token"),
        max_length=64,
        unique=True,
        default=new_invite_token,
        help_text=_("The secret part of the invitation link."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="invites_created",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    uses = models.PositiveIntegerField(
        _("uses"), default=0, help_text=_("How many people joined through this link.")
    )
    revoked = models.BooleanField(
        _("revoked"), default=False, help_text=_("A revoked link admits nobody.")
    )

    class Meta:
        verbose_name = _("invitation link")
        verbose_name_plural = _("invitation links")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return gettext("Invitation to %(space)s (expires %(expires)s)") % {
            "space": self.space,
            "expires": formats.date_format(
                timezone.localtime(self.expires_at), "SHORT_DATETIME_FORMAT"
            ),
        }

    def is_valid(self, now: "timezone.datetime | None" = None) -> bool:
        return not self.revoked and self.expires_at > (now or timezone.now())


class SpaceRemoval(models.Model):
    """A person an owner removed from a space, and when.

    Invitation links created before ``removed_at`` no longer let that person back in: only a
    link an owner creates after the removal does (an explicit new invitation).
    """

    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, related_name="removals", verbose_name=_("space")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="space_removals",
        verbose_name=_("user"),
    )
    removed_at = models.DateTimeField(_("removed"), default=timezone.now)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("removed by"),
    )

    class Meta:
        verbose_name = _("removal from a space")
        verbose_name_plural = _("removals from spaces")
        constraints = [
            models.UniqueConstraint(fields=["space", "user"], name="space_removal_unique")
        ]

    def __str__(self) -> str:
        return gettext("%(user)s removed from %(space)s") % {"user": self.user, "space": self.space}


class SpaceLimits(models.Model):
    """Per-space overrides of the limits in settings; an empty field means "use the setting".

    For every number 0 means unlimited, as in settings. ``spaces.limits.limits_for_space``
    resolves what applies.
    """

    space = models.OneToOneField(
        Space, on_delete=models.CASCADE, related_name="limits", verbose_name=_("space")
    )
    max_active_runs_per_user = models.PositiveIntegerField(
        _("active transcriptions per user"),
        null=True,
        blank=True,
        help_text=_("Transcription runs one user may have going at once (any space)."),
    )
    max_audio_senders = models.PositiveIntegerField(
        _("microphones transcribed at once"),
        null=True,
        blank=True,
        help_text=_("Participants whose microphone a browser-mode run transcribes at once."),
    )
    max_run_minutes = models.PositiveIntegerField(
        _("minutes per transcription run"),
        null=True,
        blank=True,
        help_text=_("Minutes one transcription run may last; 0 = unlimited."),
    )
    max_month_minutes = models.PositiveIntegerField(
        _("transcription minutes per month"),
        null=True,
        blank=True,
        help_text=_("Transcription minutes the space may use per calendar month; 0 = unlimited."),
    )
    max_participants = models.PositiveIntegerField(
        _("participants per session"),
        null=True,
        blank=True,
        help_text=_("People in one session at once; 0 = unlimited."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("limits")
        verbose_name_plural = _("limits")

    def __str__(self) -> str:
        return gettext("Limits of %(space)s") % {"space": self.space}


class TranscriptionSwitch(models.Model):
    """The staff's kill switch for new transcription runs (one row, ``pk=1``).

    ``TRANSCRIPTION_NEW_RUNS_DISABLED`` in the environment does the same for a deployment;
    this row lets staff flip it from the admin without a redeploy. Runs already going go on.
    """

    SINGLETON_PK = 1

    new_runs_disabled = models.BooleanField(
        _("new runs disabled"),
        default=False,
        help_text=_("Refuse every new transcription run, in every space."),
    )
    message = models.CharField(
        _("message"),
        max_length=200,
        blank=True,
        help_text=_("Shown to users whose start is refused (a default text when empty)."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("updated by"),
    )

    class Meta:
        verbose_name = _("transcription kill switch")
        verbose_name_plural = _("transcription kill switch")

    def __str__(self) -> str:
        return (
            gettext("New runs disabled") if self.new_runs_disabled else gettext("New runs allowed")
        )

    def save(self, *args: object, **kwargs: object) -> None:
        self.pk = self.SINGLETON_PK
        super().save(*args, **kwargs)
