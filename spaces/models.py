import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def new_invite_token() -> str:
    return secrets.token_urlsafe(24)


class Space(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="spaces_created",
    )
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="SpaceMember", related_name="spaces"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SpaceMember(models.Model):
    class Role(models.TextChoices):
        OWNER = "OWNER", "Owner"
        MEMBER = "MEMBER", "Member"

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "user"], name="space_member_unique")
        ]
        indexes = [models.Index(fields=["user", "space"])]
        ordering = ["joined_at"]

    def __str__(self) -> str:
        return f"{self.user} in {self.space} ({self.role})"

    @property
    def is_owner(self) -> bool:
        return self.role == self.Role.OWNER


class SpaceInvite(models.Model):
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="invites")
    token = models.CharField(max_length=64, unique=True, default=new_invite_token)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="invites_created",
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    uses = models.PositiveIntegerField(default=0)
    revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invite to {self.space} (expires {self.expires_at:%Y-%m-%d %H:%M})"

    def is_valid(self, now: "timezone.datetime | None" = None) -> bool:
        return not self.revoked and self.expires_at > (now or timezone.now())


class SpaceRemoval(models.Model):
    """A person an owner removed from a space, and when.

    Invitation links created before ``removed_at`` no longer let that person back in: only a
    link an owner creates after the removal does (an explicit new invitation).
    """

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="removals")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="space_removals"
    )
    removed_at = models.DateTimeField(default=timezone.now)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "user"], name="space_removal_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} removed from {self.space}"


class SpaceLimits(models.Model):
    """Per-space overrides of the limits in settings; an empty field means "use the setting".

    For every number 0 means unlimited, as in settings. ``spaces.limits.limits_for_space``
    resolves what applies.
    """

    space = models.OneToOneField(Space, on_delete=models.CASCADE, related_name="limits")
    max_active_runs_per_user = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Transcription runs one user may have going at once (any space).",
    )
    max_audio_senders = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Participants whose microphone a browser-mode run transcribes at once.",
    )
    max_run_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Minutes one transcription run may last; 0 = unlimited."
    )
    max_month_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Transcription minutes the space may use per calendar month; 0 = unlimited.",
    )
    max_participants = models.PositiveIntegerField(
        null=True, blank=True, help_text="People in one session at once; 0 = unlimited."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "limits"
        verbose_name_plural = "limits"

    def __str__(self) -> str:
        return f"Limits of {self.space}"


class TranscriptionSwitch(models.Model):
    """The staff's kill switch for new transcription runs (one row, ``pk=1``).

    ``TRANSCRIPTION_NEW_RUNS_DISABLED`` in the environment does the same for a deployment;
    this row lets staff flip it from the admin without a redeploy. Runs already going go on.
    """

    SINGLETON_PK = 1

    new_runs_disabled = models.BooleanField(
        default=False, help_text="Refuse every new transcription run, in every space."
    )
    message = models.CharField(
        max_length=200,
        blank=True,
        help_text="Shown to users whose start is refused (a default text when empty).",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = "transcription kill switch"
        verbose_name_plural = "transcription kill switch"

    def __str__(self) -> str:
        return "New runs disabled" if self.new_runs_disabled else "New runs allowed"

    def save(self, *args: object, **kwargs: object) -> None:
        self.pk = self.SINGLETON_PK
        super().save(*args, **kwargs)
