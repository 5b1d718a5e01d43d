"""Re-translating a session's transcript after the fact with the LLM: the segments whose
translation into a language is stale (the original was corrected after it) or missing (said
before that language started, or dropped by a failed live batch).

Segments go to the LLM in ordered batches (``transcription.translation.llm_translate``); each
batch is stored (source "llm", the segment revision that was translated) and metered
(``translation_add``) in one transaction as soon as it is back, so a failure part-way keeps
every batch done before it. One call does at most ``RETRANSLATE_MAX_SEGMENTS`` segments, which
bounds the time a page request waits; what is left is reported and done by the next call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from identity.models import User
from rooms import llm
from sessions_app.models import VideoSession
from transcription.archive.translated import pending_segments
from transcription.models import SegmentTranslation, TranscriptSegment
from transcription.translation import llm_translate
from transcription.usage.translation_meter import translation_add

logger = logging.getLogger(__name__)

RETRANSLATE_BATCH_SEGMENTS = 40
RETRANSLATE_BATCH_CHARACTERS = 6000
RETRANSLATE_MAX_SEGMENTS = 200
RETRANSLATE_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class RetranslateResult:
    translated: int
    """Segments translated and stored by this call."""
    remaining: int
    """Segments still without an up-to-date translation after it."""
    error: str = ""
    """Why the LLM stopped it, in the active language ("" when it did not fail)."""


def _batches(segments: list[TranscriptSegment]) -> list[list[TranscriptSegment]]:
    batches: list[list[TranscriptSegment]] = []
    batch: list[TranscriptSegment] = []
    characters = 0
    for segment in segments:
        if batch and (
            len(batch) >= RETRANSLATE_BATCH_SEGMENTS
            or characters + len(segment.text) > RETRANSLATE_BATCH_CHARACTERS
        ):
            batches.append(batch)
            batch, characters = [], 0
        batch.append(segment)
        characters += len(segment.text)
    if batch:
        batches.append(batch)
    return batches


def _store(
    *,
    session: VideoSession,
    language: str,
    by: User,
    batch: list[TranscriptSegment],
    texts: list[str],
) -> None:
    now = timezone.now()
    with transaction.atomic():
        SegmentTranslation.objects.bulk_create(
            [
                SegmentTranslation(
                    session_id=session.pk,
                    segment_id=segment.pk,
                    language=language,
                    text=text,
                    source=SegmentTranslation.Source.LLM,
                    source_revision=segment.revision,
                    created_at=now,
                    updated_at=now,
                )
                for segment, text in zip(batch, texts, strict=True)
            ],
            update_conflicts=True,
            unique_fields=["segment", "language"],
            update_fields=["text", "source", "source_revision", "updated_at"],
        )
        translation_add(
            session_id=session.pk,
            user_id=by.pk,
            provider="llm",
            language=language,
            characters=sum(len(segment.text) for segment in batch),
            segments=len(batch),
        )


def session_retranslate(*, session: VideoSession, language: str, by: User) -> RetranslateResult:
    """Translate the stale and missing segments of ``session`` into ``language`` (a clean
    caption language, not "") with the configured LLM, for ``by`` (who is billed).

    The caller checks that ``by`` may see the session and that an LLM is configured. An LLM
    failure stops at the failed batch: nothing stored is lost, and the result says why.
    """
    segments = list(
        pending_segments(session_id=session.pk, language=language)[:RETRANSLATE_MAX_SEGMENTS]
    )
    translated = 0
    error = ""
    if segments:
        config = llm.llm_config(timeout_seconds=RETRANSLATE_TIMEOUT_SECONDS)
        with llm.LlmClient(config) as client:
            for batch in _batches(segments):
                try:
                    texts = llm_translate(client, [s.text for s in batch], target=language)
                except llm.LlmError as exc:
                    logger.warning(
                        "re-translation of session %s into %s failed: %s",
                        session.pk,
                        language,
                        exc,
                    )
                    error = exc.reason()
                    break
                _store(session=session, language=language, by=by, batch=batch, texts=texts)
                translated += len(batch)
    remaining = pending_segments(session_id=session.pk, language=language).count()
    return RetranslateResult(translated=translated, remaining=remaining, error=error)
