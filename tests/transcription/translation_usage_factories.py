"""Translation meter rows for the usage/cost tests, written by the meter's own writers."""

from __future__ import annotations

from datetime import datetime

from sessions_app.models import VideoSession
from transcription.models import TranscriptionUsage, TranslationUsage
from transcription.usage.translation_meter import (
    TranslationCounts,
    translation_add,
    translation_checkpoint,
)


def make_translation(
    *,
    language: str,
    characters: int,
    usage: TranscriptionUsage | None = None,
    session: VideoSession | None = None,
    user=None,
    segments: int = 1,
    provider: str = "gladia",
    created_at: datetime | None = None,
) -> TranslationUsage:
    """The translation of ``usage``'s run into ``language`` as the live path checkpoints it;
    without ``usage``, re-translation of ``session`` by ``user`` after the session (no run).
    ``created_at`` moves the row to another day (the writers stamp it now)."""
    if usage is not None:
        counts = {language: TranslationCounts(characters, segments, usage.duration_seconds)}
        translation_checkpoint(run_id=usage.run_id, provider=provider, counts=counts)
        row = TranslationUsage.objects.get(run_id=usage.run_id, language=language)
    else:
        assert session is not None
        row = translation_add(
            session_id=session.pk,
            user_id=user.pk if user else None,
            provider=provider,
            language=language,
            characters=characters,
            segments=segments,
        )
    if created_at is not None:
        TranslationUsage.objects.filter(pk=row.pk).update(created_at=created_at)
        row.refresh_from_db()
    return row
