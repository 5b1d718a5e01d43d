import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from sessions_app.models import Participant, VideoSession


def new_ingest_key() -> str:
    return secrets.token_urlsafe(24)


class TranscriptionRun(models.Model):
    """One transcription stream of a session. Status changes go through ``transitions.py``."""

    class Mode(models.TextChoices):
        SERVER = "SERVER", "Server (LiveKit egress)"
        BROWSER = "BROWSER", "Browser audio"

    class Status(models.TextChoices):
        STARTING = "STARTING", "Starting"
        ACTIVE = "ACTIVE", "Active"
        STOPPING = "STOPPING", "Stopping"
        STOPPED = "STOPPED", "Stopped"
        FAILED = "FAILED", "Failed"

    UNFINISHED = (Status.STARTING, Status.ACTIVE, Status.STOPPING)

    session = models.ForeignKey(VideoSession, on_delete=models.CASCADE, related_name="runs")
    mode = models.CharField(max_length=8, choices=Mode.choices)
    provider = models.CharField(max_length=200)
    languages = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.STARTING)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    # Where the runner listens for audio frames and control messages (a channel-layer name).
    control_channel = models.CharField(max_length=200, blank=True)
    ingest_key = models.CharField(max_length=64, default=new_ingest_key, editable=False)
    egress_id = models.CharField(max_length=64, blank=True)
    # The ingest port the egress pushes to: a restarted runner takes it back if it can.
    ingest_port = models.PositiveIntegerField(null=True, blank=True)
    egress_status = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(status__in=["STARTING", "ACTIVE", "STOPPING"]),
                name="one_unfinished_run_per_session",
            )
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.session.slug} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status not in self.UNFINISHED


class TranscriptSegment(models.Model):
    """A final utterance. Partials are never stored."""

    session = models.ForeignKey(VideoSession, on_delete=models.CASCADE, related_name="segments")
    run = models.ForeignKey(TranscriptionRun, on_delete=models.CASCADE, related_name="segments")
    participant = models.ForeignKey(
        Participant, on_delete=models.SET_NULL, null=True, blank=True, related_name="segments"
    )
    speaker_identity = models.CharField(max_length=64, blank=True)
    speaker_name = models.CharField(max_length=120, blank=True)
    utterance_id = models.CharField(max_length=128)
    text = models.TextField()
    language = models.CharField(max_length=16, blank=True)
    # Seconds since the session started.
    start_offset = models.FloatField()
    end_offset = models.FloatField()
    confidence = models.FloatField(
        null=True,
        blank=True,
        help_text="The engine's confidence in the text, 0 to 1 (as recognised).",
    )
    words = models.JSONField(
        null=True,
        blank=True,
        help_text="As recognised: [{text, start, end, confidence}] (session seconds), "
        "where the engine gives words.",
    )
    revision = models.PositiveIntegerField(
        default=0, help_text="How many times people changed it (0: as recognised)."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["start_offset", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "utterance_id"], name="segment_session_utterance_unique"
            )
        ]
        indexes = [models.Index(fields=["session", "start_offset"])]

    def __str__(self) -> str:
        return f"[{self.start_offset:.1f}s] {self.speaker_name or 'Room'}: {self.text[:60]}"


class SegmentRevision(models.Model):
    """One change a person made to one segment, with the state before and after it.

    Nothing is overwritten without a trace: the first revision's ``before`` is the segment as
    recognised. One action (an edit, a speaker renamed across the session, two speakers
    merged, a revert) is one ``change`` id over all the segments it touched.
    """

    class Kind(models.TextChoices):
        TEXT = "text", "Text corrected"
        SPEAKER = "speaker", "Speaker reassigned"
        RENAME = "rename", "Speaker renamed"
        MERGE = "merge", "Speakers merged"
        REVERT = "revert", "Change reverted"

    segment = models.ForeignKey(
        TranscriptSegment, on_delete=models.CASCADE, related_name="revisions"
    )
    session = models.ForeignKey(VideoSession, on_delete=models.CASCADE, related_name="+")
    change = models.CharField(max_length=32, db_index=True)
    number = models.PositiveIntegerField(help_text="The segment's revision after this change.")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reverts = models.CharField(
        max_length=32, blank=True, help_text="The change this one undid (kind revert)."
    )
    before = models.JSONField(help_text="{text, speaker_identity, speaker_name, participant}")
    after = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "number"], name="revision_segment_number")
        ]
        indexes = [models.Index(fields=["session", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} (r{self.number} of segment {self.segment_id})"


class TranscriptionUsage(models.Model):
    """The meter of one run: checkpointed while it is active, finalised when it ends."""

    session = models.ForeignKey(VideoSession, on_delete=models.CASCADE, related_name="usage")
    run = models.OneToOneField(TranscriptionRun, on_delete=models.CASCADE, related_name="usage")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="transcription_usage",
    )
    provider = models.CharField(max_length=200)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(default=0)
    billed_minutes = models.PositiveIntegerField(default=0)
    audio_chunks = models.PositiveBigIntegerField(default=0)
    audio_bytes = models.PositiveBigIntegerField(default=0)
    partial_count = models.PositiveIntegerField(default=0)
    final_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    reconnect_count = models.PositiveIntegerField(default=0)
    cost_per_minute = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    total_cost = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("0"))
    finalized = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # The usage reports (transcription/usage/reports.py) sum these columns per user, per session
        # and per space (through its sessions) over a period: covering indexes let PostgreSQL
        # answer them from the index alone (benchmarks/usage_stats.py, docs/benchmarks.md).
        indexes = [
            models.Index(
                fields=["session", "created_at"],
                include=["billed_minutes", "total_cost", "duration_seconds"],
                name="usage_session_created_idx",
            ),
            models.Index(
                fields=["user", "created_at"],
                include=["session", "billed_minutes", "total_cost", "duration_seconds"],
                name="usage_user_created_idx",
            ),
            models.Index(fields=["created_at"]),
        ]

    def __str__(self) -> str:
        return f"Usage of run {self.run_id}: {self.billed_minutes} min, {self.total_cost}"
