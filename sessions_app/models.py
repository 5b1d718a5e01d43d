import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from spaces.models import Space

# No look-alike characters; 12 of 32 symbols = 60 bits, far beyond guessing by enumeration.
_SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


# Activity is recorded at most once per this interval per session: finals and pings come
# much more often, and the inactivity sweep only needs minutes.
ACTIVITY_RESOLUTION = timedelta(minutes=1)


def new_session_slug() -> str:
    """An unguessable slug like ``kq7-xm2p-4rz9t``; also the LiveKit room name."""
    chars = "".join(secrets.choice(_SLUG_ALPHABET) for _ in range(12))
    return f"{chars[:3]}-{chars[3:7]}-{chars[7:]}"


def default_languages() -> list[str]:
    return ["en"]


class VideoSession(models.Model):
    class Status(models.TextChoices):
        CREATED = "CREATED", "Created"
        LIVE = "LIVE", "Live"
        ENDED = "ENDED", "Ended"

    slug = models.CharField(max_length=32, unique=True, default=new_session_slug, editable=False)
    title = models.CharField(max_length=200)
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="sessions")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="sessions_created",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.CREATED)
    # Spoken languages passed to the STT provider: ISO 639-1 codes; empty means auto-detect.
    languages = models.JSONField(default=default_languages, blank=True)
    # A small meeting: browsers connect peer to peer (no SFU) even when LiveKit is configured.
    peer_to_peer = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["space", "-created_at"]),
            models.Index(fields=["created_by"]),
            models.Index(fields=["status", "last_activity_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.slug})"

    @property
    def is_ended(self) -> bool:
        return self.status == self.Status.ENDED

    @property
    def room_name(self) -> str:
        return self.slug

    @property
    def uses_livekit(self) -> bool:
        """Video through the LiveKit SFU; otherwise the browsers form a peer-to-peer mesh."""
        return settings.LIVEKIT_ENABLED and not self.peer_to_peer


class Participant(models.Model):
    class Role(models.TextChoices):
        HOST = "HOST", "Host"
        GUEST = "GUEST", "Guest"

    session = models.ForeignKey(VideoSession, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="participations",
    )
    identity = models.CharField(max_length=64)
    name = models.CharField(max_length=120)
    role = models.CharField(max_length=5, choices=Role.choices, default=Role.GUEST)
    joined_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["joined_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "identity"],
                name="participant_session_identity_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} in {self.session.slug}"


def _empty_list() -> list:
    return []


class SessionAnalysis(models.Model):
    """The after-session analysis: summary, topics, action items and speaker stats.

    One row per session; a re-run resets it to PENDING and the task replaces its contents.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", _("Pending")
        RUNNING = "RUNNING", _("Running")
        DONE = "DONE", _("Done")
        FAILED = "FAILED", _("Failed")

    session = models.OneToOneField(VideoSession, on_delete=models.CASCADE, related_name="analysis")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # The analyser that produced the result: "offline", "llm" or a custom provider's name.
    provider = models.CharField(max_length=32, blank=True)
    summary = models.TextField(blank=True)
    # ["pricing model", "launch date", ...]
    topics = models.JSONField(default=_empty_list, blank=True)
    # [{"text", "owner" (name or null), "due" (phrase or null), "start" (seconds or null)}]
    action_items = models.JSONField(default=_empty_list, blank=True)
    # [{"identity", "name", "talk_seconds", "words", "wpm", "turns"}]
    speaker_stats = models.JSONField(default=_empty_list, blank=True)
    # FAILED: why. DONE: a note when the configured provider failed and the offline one answered.
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the transcript was last edited (``analysis_mark_stale``); cleared by a re-run.
    transcript_edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "session analyses"
        indexes = [models.Index(fields=["status", "started_at"])]

    def __str__(self) -> str:
        return f"Analysis of {self.session.slug} ({self.status})"

    @property
    def is_stale(self) -> bool:
        """The transcript was edited after this analysis read it (an edit made while it was
        still waiting to start is part of what it read)."""
        return (
            self.transcript_edited_at is not None
            and self.started_at is not None
            and self.transcript_edited_at > self.started_at
        )


class Task(models.Model):
    """An action item of a session, kept as a to-do in the session's space.

    The analysis only *proposes* tasks (PROPOSED); a member of the space accepts one, possibly
    editing its title, assignee and due date (ACCEPTED: a task of the space, which can be done),
    or dismisses it (DISMISSED: kept so that a re-run does not propose it again). Tasks made
    without the analysis (the admin) are ACCEPTED from the start.
    """

    class Status(models.TextChoices):
        PROPOSED = "PROPOSED", _("Proposed")
        ACCEPTED = "ACCEPTED", _("Accepted")
        DISMISSED = "DISMISSED", _("Dismissed")

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="tasks")
    session = models.ForeignKey(
        VideoSession, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    analysis = models.ForeignKey(
        SessionAnalysis, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.ACCEPTED)
    title = models.CharField(max_length=500)
    # The action item as the analysis proposed it: a re-run recognises its items by this
    # (normalised), whatever title the person who accepted it chose.
    proposed_title = models.CharField(max_length=500, blank=True)
    # The member the owner's name matched, if any; ``owner_name`` keeps what was said.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks_assigned",
    )
    owner_name = models.CharField(max_length=120, blank=True)
    due_phrase = models.CharField(max_length=120, blank=True)
    # A date picked when accepting (``due_phrase`` keeps the words, as said or as typed).
    due_date = models.DateField(null=True, blank=True)
    # Seconds since the session started: the transcript moment the item was said.
    start_seconds = models.FloatField(null=True, blank=True)
    # Drawn from speech the recogniser was unsure of (below settings.TRANSCRIPT_LOW_CONFIDENCE).
    low_confidence = models.BooleanField(default=False)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks_accepted",
    )
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks_dismissed",
    )
    done = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks_done",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["done", "-created_at", "id"]
        indexes = [
            models.Index(fields=["space", "status", "done", "-created_at"]),
            models.Index(fields=["session"]),
            models.Index(fields=["assignee", "done"]),
        ]
        constraints = [
            # Only a task of the space can be done; a proposal is accepted first.
            models.CheckConstraint(
                condition=models.Q(done=False) | models.Q(status="ACCEPTED"),
                name="task_done_only_when_accepted",
            )
        ]

    def __str__(self) -> str:
        return self.title[:80]
