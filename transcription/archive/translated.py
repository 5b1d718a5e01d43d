"""Reads of a session's stored translations for the finished page, its exports and
re-translation: which languages it has, a page's translations, what is stale or missing."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from sessions_app.models import VideoSession
from transcription.models import SegmentTranslation, TranscriptSegment


def translation_languages(*, session: VideoSession) -> list[str]:
    """The languages the session has stored translations in, by code."""
    rows = SegmentTranslation.objects.filter(session_id=session.pk).order_by("language")
    return list(rows.values_list("language", flat=True).distinct())


def page_translations(
    session: VideoSession, language: str, ids: list[int]
) -> dict[int, tuple[str, int]]:
    """``{segment id: (text, source revision)}`` of the translations of ``ids`` into
    ``language`` (none for "")."""
    if not language or not ids:
        return {}
    rows = SegmentTranslation.objects.filter(
        session_id=session.pk, language=language, segment_id__in=ids
    ).exclude(text="")
    return {
        pk: (text, revision)
        for pk, text, revision in rows.values_list("segment_id", "text", "source_revision")
    }


def translation_html(
    *,
    utterance_id: str,
    original: str,
    text: str,
    language: str,
    stale: bool,
    inner: SafeString | None = None,
) -> SafeString:
    """A translated segment: ``<span class="seg-tr" lang data-uid title="Original: …">``, then
    a badge when it is stale. Not a ``.seg``: corrections edit the original (Original view)."""
    html = format_html(
        '<span class="seg-tr{}" lang="{}" data-uid="{}" title="{}">{}</span>',
        " stale" if stale else "",
        language,
        utterance_id,
        gettext("Original: %(text)s") % {"text": original},
        inner if inner is not None else text,
    )
    if stale:
        html += format_html(
            ' <span class="badge tr-stale" title="{}">{}</span>',
            gettext("The original was corrected after this translation."),
            gettext("outdated"),
        )
    return html


def pending_segments(*, session_id: int, language: str) -> QuerySet[TranscriptSegment]:
    """The session's segments without an up-to-date translation into ``language`` (none, or
    one made before the last correction), in time order. Segments already spoken in
    ``language`` need none."""
    fresh = SegmentTranslation.objects.filter(
        segment_id=OuterRef("pk"), language=language, source_revision__gte=OuterRef("revision")
    ).exclude(text="")
    return (
        TranscriptSegment.objects.filter(session_id=session_id)
        .exclude(Q(language=language) | Q(text=""))
        .filter(~Exists(fresh))
        .order_by("start_offset", "id")
    )


@dataclass(frozen=True, slots=True)
class TranslationState:
    translated: int
    """Segments with a translation (stale ones included)."""
    stale: int
    """Translations made before the original's last correction."""
    pending: int
    """Segments a re-translation would translate: stale, or with no translation."""


def translation_state(*, session: VideoSession, language: str) -> TranslationState:
    rows = SegmentTranslation.objects.filter(session_id=session.pk, language=language)
    return TranslationState(
        translated=rows.count(),
        stale=rows.filter(segment__revision__gt=F("source_revision")).count(),
        pending=pending_segments(session_id=session.pk, language=language).count(),
    )
