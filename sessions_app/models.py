import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
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
        CREATED = "CREATED", pgettext_lazy("session status", "Created")
        LIVE = "LIVE", pgettext_lazy("session status", "Live")
        ENDED = "ENDED", pgettext_lazy("session status", "Ended")

    slug = models.CharField(
        _("address"),
        max_length=32,
        unique=True,
        default=new_session_slug,
        editable=False,
        help_text=_("The session's part of its page address; also the LiveKit room name."),
    )
    title = models.CharField(_("title"), max_length=200)
    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, related_name="sessions", verbose_name=_("space")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="sessions_created",
        verbose_name=_("created by"),
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.CREATED
    )
    # Spoken languages passed to the STT provider: ISO 639-1 codes; empty means auto-detect.
    languages = models.JSONField(
        _("languages"),
        default=default_languages,
        blank=True,
        help_text=_(
            "ISO 639-1 codes: none for automatic detection, one for a fixed language, several "
            "for the languages the speech provider switches between."
        ),
    )
    # A small meeting: browsers connect peer to peer (no SFU) even when LiveKit is configured.
    peer_to_peer = models.BooleanField(_("peer-to-peer video"), default=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    last_activity_at = models.DateTimeField(_("last activity"), default=timezone.now)

    class Meta:
        verbose_name = _("session")
        verbose_name_plural = _("sessions")
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
        HOST = "HOST", _("Host")
        GUEST = "GUEST", _("Guest")

    session = models.ForeignKey(
        VideoSession,
        on_delete=models.CASCADE,
        related_name="participants",
        verbose_name=_("session"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="participations",
        verbose_name=_("user"),
    )
    identity = models.CharField(
        _("identity"), max_length=64, help_text=_("Who it is in the call and the transcript.")
    )
    name = models.CharField(_("name"), max_length=120)
    role = models.CharField(_("role"), max_length=5, choices=Role.choices, default=Role.GUEST)
    joined_at = models.DateTimeField(_("joined"), default=timezone.now)
    left_at = models.DateTimeField(pgettext_lazy("participant", "left"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)

    class Meta:
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        ordering = ["joined_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "identity"],
                name="participant_session_identity_unique",
            )
        ]

    def __str__(self) -> str:
        return gettext("%(name)s in %(session)s") % {
            "name": self.name,
            "session": self.session.slug,
        }


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

    session = models.OneToOneField(
        VideoSession, on_delete=models.CASCADE, related_name="analysis", verbose_name=_("session")
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.PENDING
    )
    # The analyser that produced the result: "offline", "llm" or a custom provider's name.
    provider = models.CharField(
        _("analyser"),
        max_length=32,
        blank=True,
        help_text=_("What produced the result: offline, llm or a custom analyser."),
    )
    summary = models.TextField(_("summary"), blank=True)
    # ["pricing model", "launch date", ...]
    topics = models.JSONField(_("topics"), default=_empty_list, blank=True)
    # [{"text", "owner" (name or null), "due" (phrase or null), "start" (seconds or null)}]
    action_items = models.JSONField(_("action items"), default=_empty_list, blank=True)
    # [{"identity", "name", "talk_seconds", "words", "wpm", "turns"}]
    speaker_stats = models.JSONField(_("speaker stats"), default=_empty_list, blank=True)
    # FAILED: why. DONE: a note when the configured provider failed and the offline one answered.
    error = models.TextField(
        _("error"),
        blank=True,
        help_text=_(
            "Failed: why. Done: a note when the configured analyser failed and the offline one "
            "answered."
        ),
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # When the transcript was last edited (``analysis_mark_stale``); cleared by a re-run.
    transcript_edited_at = models.DateTimeField(
        _("transcript edited"),
        null=True,
        blank=True,
        help_text=_("When people last corrected the transcript; a re-run clears it."),
    )

    class Meta:
        verbose_name = _("session analysis")
        verbose_name_plural = _("session analyses")
        indexes = [models.Index(fields=["status", "started_at"])]

    def __str__(self) -> str:
        return gettext("Analysis of %(session)s (%(status)s)") % {
            "session": self.session.slug,
            "status": self.get_status_display(),
        }

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

    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, related_name="tasks", verbose_name=_("space")
    )
    session = models.ForeignKey(
        VideoSession,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
        verbose_name=_("session"),
    )
    analysis = models.ForeignKey(
        SessionAnalysis,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
        verbose_name=_("analysis"),
    )
    status = models.CharField(
        _("status"), max_length=9, choices=Status.choices, default=Status.ACCEPTED
    )
    title = models.CharField(_("title"), max_length=500)
    # The action item as the analysis proposed it: a re-run recognises its items by this
    # (normalised), whatever title the person who accepted it chose.
    proposed_title = models.CharField(
        _("proposed title"),
        max_length=500,
        blank=True,
        help_text=_("The action item as the analysis proposed it."),
    )
    # The member the owner's name matched, if any; ``owner_name`` keeps what was said.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks_assigned",
        verbose_name=_("assignee"),
    )
    owner_name = models.CharField(
        _("owner (as said)"),
        max_length=120,
        blank=True,
        help_text=_("The name said in the session, whether or not it matched a member."),
    )
    due_phrase = models.CharField(_("due (as said)"), max_length=120, blank=True)
    # A date picked when accepting (``due_phrase`` keeps the words, as said or as typed).
    due_date = models.DateField(_("due date"), null=True, blank=True)
    # Seconds since the session started: the transcript moment the item was said.
    start_seconds = models.FloatField(
        _("moment in the transcript"),
        null=True,
        blank=True,
        help_text=_("Seconds since the session started."),
    )
    # Drawn from speech the recogniser was unsure of (below settings.TRANSCRIPT_LOW_CONFIDENCE).
    low_confidence = models.BooleanField(
        _("unsure speech"),
        default=False,
        help_text=_("Drawn from speech the recogniser was unsure of: check the recording."),
    )
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks_accepted",
        verbose_name=_("accepted by"),
    )
    dismissed_at = models.DateTimeField(_("dismissed"), null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks_dismissed",
        verbose_name=_("dismissed by"),
    )
    done = models.BooleanField(_("done"), default=False)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks_done",
        verbose_name=_("done by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
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
