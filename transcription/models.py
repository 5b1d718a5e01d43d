import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from rooms.money import format_money
from sessions_app.models import Participant, VideoSession
from transcription.archive.exports import unknown_speaker


def new_ingest_key() -> str:
    return secrets.token_urlsafe(24)


class TranscriptionRun(models.Model):
    """One transcription stream of a session. Status changes go through ``transitions.py``."""

    class Mode(models.TextChoices):
        SERVER = "SERVER", _("Server (LiveKit egress)")
        BROWSER = "BROWSER", _("Browser audio")

    class Status(models.TextChoices):
        STARTING = "STARTING", _("Starting")
        ACTIVE = "ACTIVE", _("Active")
        STOPPING = "STOPPING", _("Stopping")
        STOPPED = "STOPPED", _("Stopped")
        FAILED = "FAILED", _("Failed")

    UNFINISHED = (Status.STARTING, Status.ACTIVE, Status.STOPPING)

    session = models.ForeignKey(
        VideoSession, on_delete=models.CASCADE, related_name="runs", verbose_name=_("session")
    )
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices)
    provider = models.CharField(_("provider"), max_length=200)
    languages = models.JSONField(
        _("languages"),
        default=list,
        blank=True,
        help_text=_("ISO 639-1 codes the run was started with; empty: automatic detection."),
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.STARTING
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("started by"),
    )
    # Where the runner listens for audio frames and control messages (a channel-layer name).
    control_channel = models.CharField(_("control channel"), max_length=200, blank=True)
    ingest_key = models.CharField(
        _("ingest key"), max_length=64, default=new_ingest_key, editable=False
    )
    egress_id = models.CharField(_("egress ID"), max_length=64, blank=True)
    # The ingest port the egress pushes to: a restarted runner takes it back if it can.
    ingest_port = models.PositiveIntegerField(_("ingest port"), null=True, blank=True)
    egress_status = models.CharField(_("egress status"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("restarts"), default=0)
    error_code = models.CharField(_("error code"), max_length=32, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("transcription run")
        verbose_name_plural = _("transcription runs")
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
        return gettext("Run %(run)s of %(session)s (%(status)s)") % {
            "run": self.pk,
            "session": self.session.slug,
            "status": self.get_status_display(),
        }

    @property
    def is_finished(self) -> bool:
        return self.status not in self.UNFINISHED


class TranscriptSegment(models.Model):
    """A final utterance. Partials are never stored."""

    session = models.ForeignKey(
        VideoSession, on_delete=models.CASCADE, related_name="segments", verbose_name=_("session")
    )
    run = models.ForeignKey(
        TranscriptionRun, on_delete=models.CASCADE, related_name="segments", verbose_name=_("run")
    )
    participant = models.ForeignKey(
        Participant,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="segments",
        verbose_name=_("participant"),
    )
    speaker_identity = models.CharField(_("speaker identity"), max_length=64, blank=True)
    speaker_name = models.CharField(_("speaker"), max_length=120, blank=True)
    utterance_id = models.CharField(_("utterance ID"), max_length=128)
    text = models.TextField(_("text"))
    language = models.CharField(
        _("language"),
        max_length=16,
        blank=True,
        help_text=_("The language the engine heard (ISO 639-1); empty when it did not say."),
    )
    start_offset = models.FloatField(_("start"), help_text=_("Seconds since the session started."))
    end_offset = models.FloatField(_("end"), help_text=_("Seconds since the session started."))
    confidence = models.FloatField(
        _("confidence"),
        null=True,
        blank=True,
        help_text=_("The engine's confidence in the text, 0 to 1 (as recognised)."),
    )
    words = models.JSONField(
        _("words"),
        null=True,
        blank=True,
        help_text=_(
            "As recognised: [{text, start, end, confidence}] (session seconds), "
            "where the engine gives words."
        ),
    )
    revision = models.PositiveIntegerField(
        _("revision"),
        default=0,
        help_text=_("How many times people changed it (0: as recognised)."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("transcript segment")
        verbose_name_plural = _("transcript segments")
        ordering = ["start_offset", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "utterance_id"], name="segment_session_utterance_unique"
            )
        ]
        indexes = [models.Index(fields=["session", "start_offset"])]

    def __str__(self) -> str:
        speaker = self.speaker_name or unknown_speaker()
        return f"[{self.start_offset:.1f}s] {speaker}: {self.text[:60]}"


class SegmentRevision(models.Model):
    """One change a person made to one segment, with the state before and after it.

    Nothing is overwritten without a trace: the first revision's ``before`` is the segment as
    recognised. One action (an edit, a speaker renamed across the session, two speakers
    merged, a revert) is one ``change`` id over all the segments it touched.
    """

    class Kind(models.TextChoices):
        TEXT = "text", _("Text corrected")
        SPEAKER = "speaker", _("Speaker reassigned")
        RENAME = "rename", _("Speaker renamed")
        MERGE = "merge", _("Speakers merged")
        REVERT = "revert", _("Change reverted")

    segment = models.ForeignKey(
        TranscriptSegment,
        on_delete=models.CASCADE,
        related_name="revisions",
        verbose_name=_("segment"),
    )
    session = models.ForeignKey(
        VideoSession, on_delete=models.CASCADE, related_name="+", verbose_name=_("session")
    )
    change = models.CharField(_("change"), max_length=32, db_index=True)
    number = models.PositiveIntegerField(
        _("number"), help_text=_("The segment's revision after this change.")
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    reverts = models.CharField(
        _("reverts"),
        max_length=32,
        blank=True,
        help_text=_("The change this one undid (kind revert)."),
    )
    before = models.JSONField(
        _("before"), help_text=_("{text, speaker_identity, speaker_name, participant}")
    )
    after = models.JSONField(_("after"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("segment revision")
        verbose_name_plural = _("segment revisions")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "number"], name="revision_segment_number")
        ]
        indexes = [models.Index(fields=["session", "created_at"])]

    def __str__(self) -> str:
        return gettext("%(kind)s (r%(number)s of segment %(segment)s)") % {
            "kind": self.get_kind_display(),
            "number": self.number,
            "segment": self.segment_id,
        }


class SegmentTranslation(models.Model):
    """A final segment in one more language: one row per segment and language, upserted like
    finals (a resent translation replaces the text)."""

    class Source(models.TextChoices):
        GLADIA = "gladia", _("Gladia (live)")
        LLM = "llm", _("LLM")

    session = models.ForeignKey(
        VideoSession,
        on_delete=models.CASCADE,
        related_name="translations",
        verbose_name=_("session"),
    )
    segment = models.ForeignKey(
        TranscriptSegment,
        on_delete=models.CASCADE,
        related_name="translations",
        verbose_name=_("segment"),
    )
    language = models.CharField(_("language"), max_length=16, help_text=_("An ISO 639-1 code."))
    text = models.TextField(_("text"))
    source = models.CharField(_("translated by"), max_length=16, choices=Source.choices)
    source_revision = models.PositiveIntegerField(
        _("of revision"),
        default=0,
        help_text=_(
            "The segment revision that was translated; older than the segment's: the "
            "original was corrected since (stale)."
        ),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("segment translation")
        verbose_name_plural = _("segment translations")
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "language"], name="translation_segment_language_unique"
            )
        ]
        indexes = [models.Index(fields=["session", "language"])]

    def __str__(self) -> str:
        return f"[{self.language}] {self.text[:60]}"

    def is_stale(self, segment_revision: int) -> bool:
        return self.source_revision < segment_revision


class TranscriptionUsage(models.Model):
    """The meter of one run: checkpointed while it is active, finalised when it ends."""

    session = models.ForeignKey(
        VideoSession, on_delete=models.CASCADE, related_name="usage", verbose_name=_("session")
    )
    run = models.OneToOneField(
        TranscriptionRun, on_delete=models.CASCADE, related_name="usage", verbose_name=_("run")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="transcription_usage",
        verbose_name=_("user"),
    )
    provider = models.CharField(_("provider"), max_length=200)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    duration_seconds = models.FloatField(
        _("metered seconds"), default=0, help_text=_("Seconds of audio the run transcribed.")
    )
    billed_minutes = models.PositiveIntegerField(
        _("billed minutes"),
        default=0,
        help_text=_("The metered time rounded up to whole minutes."),
    )
    audio_chunks = models.PositiveBigIntegerField(_("audio chunks"), default=0)
    audio_bytes = models.PositiveBigIntegerField(_("audio bytes"), default=0)
    partial_count = models.PositiveIntegerField(_("partials"), default=0)
    final_count = models.PositiveIntegerField(_("finals"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    reconnect_count = models.PositiveIntegerField(_("reconnects"), default=0)
    cost_per_minute = models.DecimalField(
        _("cost per minute"), max_digits=10, decimal_places=4, default=Decimal("0")
    )
    total_cost = models.DecimalField(
        _("cost"), max_digits=12, decimal_places=4, default=Decimal("0")
    )
    finalized = models.BooleanField(
        _("finalised"), default=False, help_text=_("The run ended and its meter is final.")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("transcription usage")
        verbose_name_plural = _("transcription usage")
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
        return gettext("Usage of run %(run)s: %(minutes)s min, %(cost)s") % {
            "run": self.run_id,
            "minutes": self.billed_minutes,
            "cost": format_money(self.total_cost),
        }


class TranslationUsage(models.Model):
    """The translation meter of one run and language (``run`` empty: translations made after
    the session, e.g. re-translating corrected segments), priced per million characters."""

    session = models.ForeignKey(
        VideoSession,
        on_delete=models.CASCADE,
        related_name="translation_usage",
        verbose_name=_("session"),
    )
    run = models.ForeignKey(
        TranscriptionRun,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="translation_usage",
        verbose_name=_("run"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="translation_usage",
        verbose_name=_("user"),
    )
    language = models.CharField(_("language"), max_length=16)
    provider = models.CharField(
        _("translated by"), max_length=16, choices=SegmentTranslation.Source.choices
    )
    characters = models.PositiveBigIntegerField(
        _("characters"), default=0, help_text=_("Characters of translated text.")
    )
    segments = models.PositiveIntegerField(_("segments"), default=0)
    audio_seconds = models.FloatField(
        _("audio seconds"),
        default=0,
        help_text=_("Seconds of audio transcribed while this language was translated live."),
    )
    cost_per_million_characters = models.DecimalField(
        _("cost per million characters"), max_digits=10, decimal_places=4, default=Decimal("0")
    )
    total_cost = models.DecimalField(
        _("cost"), max_digits=12, decimal_places=4, default=Decimal("0")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("translation usage")
        verbose_name_plural = _("translation usage")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "language"],
                condition=Q(run__isnull=False),
                name="translation_usage_run_language_unique",
            ),
            models.UniqueConstraint(
                fields=["session", "language", "provider"],
                condition=Q(run__isnull=True),
                name="translation_usage_after_session_unique",
            ),
        ]
        # Covering, like the transcription meter's: the usage reports sum these per session and
        # per user over a period from the index alone (an index-only scan: 1.7 ms against a
        # 28 ms sequential scan over 120,000 rows, helper's measurement for issue 18).
        indexes = [
            models.Index(
                fields=["session", "created_at"],
                include=["language", "characters", "segments", "total_cost"],
                name="tr_usage_session_created_idx",
            ),
            models.Index(
                fields=["user", "created_at"],
                include=["session", "language", "characters", "segments", "total_cost"],
                name="tr_usage_user_created_idx",
            ),
            models.Index(fields=["created_at"]),
        ]

    def __str__(self) -> str:
        return gettext("Translation into %(language)s: %(characters)s characters, %(cost)s") % {
            "language": self.language,
            "characters": self.characters,
            "cost": format_money(self.total_cost),
        }
