"""The translation meter: characters (and live audio seconds) per run and language, priced per
million characters (``settings.TRANSLATION_COST_PER_MILLION_CHARACTERS``, fixed on a row when
it is created, like a run's price per minute).

A run's counts are totals since it started, checkpointed with its transcription meter; a
restarted runner resumes from ``translation_baseline``. Translations made after the session
(re-translating corrected segments) are added to one row per session, language and provider
with no run (``translation_add``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from transcription.models import TranscriptionUsage, TranslationUsage
from transcription.usage.pricing import translation_cost


@dataclass(slots=True)
class TranslationCounts:
    characters: int = 0
    segments: int = 0
    audio_seconds: float = 0.0
    """Seconds of audio sent to the provider while this language was a live target."""


def translation_checkpoint(
    *, run_id: int, provider: str, counts: Mapping[str, TranslationCounts]
) -> None:
    """Store the totals of ``run_id`` so far, per target language (creates missing rows)."""
    if not counts:
        return
    usage = TranscriptionUsage.objects.filter(run_id=run_id).values("session_id", "user_id").first()
    if usage is None:
        return
    price = settings.TRANSLATION_COST_PER_MILLION_CHARACTERS
    with transaction.atomic():
        rows = {
            row.language: row
            for row in TranslationUsage.objects.select_for_update().filter(run_id=run_id)
        }
        for language, count in counts.items():
            row = rows.get(language)
            if row is None:
                row = TranslationUsage(
                    run_id=run_id,
                    session_id=usage["session_id"],
                    user_id=usage["user_id"],
                    language=language,
                    provider=provider,
                    cost_per_million_characters=price,
                )
            row.characters = count.characters
            row.segments = count.segments
            row.audio_seconds = round(count.audio_seconds, 3)
            row.total_cost = translation_cost(row.characters, row.cost_per_million_characters)
            row.save()


def translation_baseline(*, run_id: int) -> dict[str, TranslationCounts]:
    """What the translation meter of ``run_id`` already holds, per language."""
    return {
        row.language: TranslationCounts(
            characters=row.characters, segments=row.segments, audio_seconds=row.audio_seconds
        )
        for row in TranslationUsage.objects.filter(run_id=run_id)
    }


def translation_add(
    *,
    session_id: int,
    user_id: int | None,
    provider: str,
    language: str,
    characters: int,
    segments: int,
) -> TranslationUsage:
    """Add translation done after the session (no run) to the session's row for ``language``."""
    with transaction.atomic():
        row = (
            TranslationUsage.objects.select_for_update()
            .filter(session_id=session_id, run__isnull=True, language=language, provider=provider)
            .first()
        )
        if row is None:
            row = TranslationUsage(
                session_id=session_id,
                user_id=user_id,
                language=language,
                provider=provider,
                cost_per_million_characters=settings.TRANSLATION_COST_PER_MILLION_CHARACTERS,
            )
        row.characters += characters
        row.segments += segments
        row.total_cost = translation_cost(row.characters, row.cost_per_million_characters)
        row.save()
        return row
