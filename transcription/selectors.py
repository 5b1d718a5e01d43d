"""Access-checked reads of transcription data; access is the session's (members only)."""

from typing import Any

from django.db.models import QuerySet

from sessions_app.models import VideoSession
from transcription.models import (
    SegmentTranslation,
    TranscriptionRun,
    TranscriptionUsage,
    TranscriptSegment,
)


def run_current(*, session: VideoSession) -> TranscriptionRun | None:
    """The unfinished run of ``session`` if any, else its latest run, else None."""
    unfinished = (
        TranscriptionRun.objects.filter(session=session, status__in=TranscriptionRun.UNFINISHED)
        .order_by("-created_at")
        .first()
    )
    if unfinished is not None:
        return unfinished
    return TranscriptionRun.objects.filter(session=session).order_by("-created_at").first()


def run_unfinished(*, session_id: int) -> TranscriptionRun | None:
    return TranscriptionRun.objects.filter(
        session_id=session_id, status__in=TranscriptionRun.UNFINISHED
    ).first()


def segment_list(*, session: VideoSession) -> QuerySet[TranscriptSegment]:
    return TranscriptSegment.objects.filter(session=session).order_by("start_offset", "id")


def usage_list(*, session: VideoSession) -> QuerySet[TranscriptionUsage]:
    return TranscriptionUsage.objects.filter(session=session).order_by("created_at")


def providers_for_session(*, session: VideoSession) -> list[str]:
    """The speech-to-text providers that made the session's stored transcript (run order)."""
    rows = (
        TranscriptionRun.objects.filter(session=session, segments__isnull=False)
        .order_by("created_at")
        .values_list("provider", flat=True)
    )
    return list(dict.fromkeys(rows))


def translation_list(*, session: VideoSession, language: str) -> list[dict[str, Any]]:
    """The session's stored translations into ``language``, oldest final first:
    ``{"utterance_id", "text", "stale"}`` (stale: the original was corrected since)."""
    if not language:
        return []
    rows = (
        SegmentTranslation.objects.filter(session=session, language=language)
        .order_by("segment__start_offset", "segment_id")
        .values_list("segment__utterance_id", "text", "source_revision", "segment__revision")
    )
    return [
        {"utterance_id": utterance_id, "text": text, "stale": source_revision < revision}
        for utterance_id, text, source_revision, revision in rows
    ]
