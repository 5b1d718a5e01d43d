"""Reads of a session's stored transcript for the finished-session page and the exports.

Every function takes a session the caller already fetched through an access-checked selector.
The page stays bounded for long transcripts: turn boundaries come from one narrow query (no
text), then only the requested page of segments is read with its text.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchVector
from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from sessions_app.models import VideoSession
from sessions_app.selectors import participant_list
from transcription.archive.exports import (
    Cue,
    TranscriptMeta,
    cue_from_row,
    translated_cue,
    unknown_speaker,
)
from transcription.archive.marks import segment_html
from transcription.archive.translated import page_translations, translation_html
from transcription.models import SegmentTranslation, TranscriptSegment
from transcription.translation import segment_translations

TURNS_PER_PAGE = 200
SEARCH_HITS_SHOWN = 100
QUERY_MAX_LENGTH = 200
# ts_headline wraps matches in these; control characters never occur in STT text, and
# escape() leaves them alone, so they survive escaping and are then turned into <mark> tags.
_MARK_START, _MARK_STOP = "\x02", "\x03"
# PostgreSQL's built-in text search configurations for the ISO 639-1 codes of session languages.
_PG_CONFIGS = {
    "ar": "arabic",
    "ca": "catalan",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "nl": "dutch",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}


def offset_label(seconds: float) -> str:
    """Time since the session started as shown on the page: ``4:05``, ``1:02:05``."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _segments(session: VideoSession) -> QuerySet[TranscriptSegment]:
    return TranscriptSegment.objects.filter(session_id=session.pk).order_by("start_offset", "id")


# --- exports ----------------------------------------------------------------------------------


def export_cues(*, session: VideoSession, language: str = "") -> list[Cue]:
    """Every final of the session as a cue, in time order, read as plain tuples in one query;
    with ``language``, each final that has a translation into it carries that (stale ones too,
    marked), the others stay as spoken."""
    translations = segment_translations(session_id=session.pk, language=language)
    rows = _segments(session).values_list(
        "id",
        "start_offset",
        "end_offset",
        "speaker_name",
        "speaker_identity",
        "text",
        "language",
        "confidence",
        "words",
        "revision",
    )
    cues = []
    for pk, *row in rows:
        cue = cue_from_row(*row)
        if cue is None:
            continue
        shown = translations.get(pk)
        if shown is not None and shown.text.strip():
            cue = translated_cue(cue, text=shown.text, language=language, stale=shown.stale)
        cues.append(cue)
    return cues


def export_meta(*, session: VideoSession, language: str = "") -> TranscriptMeta:
    return TranscriptMeta(
        slug=session.slug,
        title=session.title,
        space=session.space.name,
        started_at=session.started_at,
        ended_at=session.ended_at,
        language=language,
    )


# --- turns and pages --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TurnSpan:
    """A speaker turn located in the time-ordered list of the session's segments."""

    index: int
    speaker: str
    speaker_identity: str
    start: float
    end: float
    first: int
    count: int

    @property
    def anchor(self) -> int:
        """Whole seconds of its start: the page's ``#t-<seconds>`` fragment."""
        return int(self.start)

    @property
    def label(self) -> str:
        return offset_label(self.start)


@dataclass(slots=True)
class TranscriptIndex:
    """Turn boundaries of a whole transcript, and which turn each segment belongs to."""

    spans: list[TurnSpan]
    segment_ids: list[int]
    turn_of_position: list[int]
    starts: list[float]

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(len(self.spans) / TURNS_PER_PAGE))

    def page_of_turn(self, turn_index: int) -> int:
        return turn_index // TURNS_PER_PAGE + 1

    def turn_at(self, seconds: float) -> TurnSpan | None:
        """The turn being spoken at ``seconds`` (the last one started by then), else the first."""
        if not self.spans:
            return None
        position = bisect.bisect_right(self.starts, seconds) - 1
        return self.spans[max(0, position)]


def transcript_index(*, session: VideoSession) -> TranscriptIndex:
    """Group the session's segments into speaker turns from one query without their text."""
    rows = _segments(session).values_list(
        "id", "speaker_identity", "speaker_name", "start_offset", "end_offset"
    )
    spans: list[TurnSpan] = []
    ids: list[int] = []
    turn_of: list[int] = []
    key: tuple[str, str] | None = None
    start = end = 0.0
    first = 0
    speaker = identity = ""
    nobody = unknown_speaker()
    for position, (pk, row_identity, name, row_start, row_end) in enumerate(rows):
        label = (name or "").strip() or nobody
        row_key = (row_identity, "" if row_identity else label)
        if row_key != key:
            if key is not None:
                spans.append(
                    TurnSpan(len(spans), speaker, identity, start, end, first, position - first)
                )
            key, speaker, identity = row_key, label, row_identity
            start, end, first = max(0.0, row_start), row_end, position
        end = max(end, row_end)
        ids.append(pk)
        turn_of.append(len(spans))
    if key is not None:
        spans.append(TurnSpan(len(spans), speaker, identity, start, end, first, len(ids) - first))
    return TranscriptIndex(
        spans=spans, segment_ids=ids, turn_of_position=turn_of, starts=[s.start for s in spans]
    )


@dataclass(frozen=True, slots=True)
class PageTurn:
    """A turn as the page shows it (flat: the template loop is the page's hot path)."""

    anchor: int
    # Only the first turn starting in a given second carries the ``t-<seconds>`` id.
    has_anchor: bool
    label: str
    speaker: str
    html: SafeString


def turn_page(
    *,
    session: VideoSession,
    index: TranscriptIndex,
    page: int,
    search: SearchResult | None = None,
    language: str = "",
) -> list[PageTurn]:
    """The turns of page ``page`` (1-based, clamped) with their text as escaped HTML; the
    segments matching ``search`` have their matches wrapped in ``<mark>``. With ``language``,
    segments translated into it show the translation (``translation_html``)."""
    page = min(max(1, page), index.page_count)
    spans = index.spans[(page - 1) * TURNS_PER_PAGE : page * TURNS_PER_PAGE]
    if not spans:
        return []
    ids = index.segment_ids[spans[0].first : spans[-1].first + spans[-1].count]
    rows = _segments(session).filter(id__in=ids)
    highlighted: dict[int, SafeString] = {}
    if search is not None:
        matched = [pk for pk in ids if pk in search.matched_ids]
        highlighted = highlight_segments(
            session=session, query=search.query, ids=matched, language=language
        )
    translations = page_translations(session, language, ids)
    html = {}
    for pk, uid, text, revision, identity, confidence, words in rows.values_list(
        "id", "utterance_id", "text", "revision", "speaker_identity", "confidence", "words"
    ):
        if pk in translations:
            shown, of_revision = translations[pk]
            html[pk] = translation_html(
                utterance_id=uid,
                original=text,
                text=shown,
                language=language,
                stale=of_revision < revision,
                inner=highlighted.get(pk),
            )
            continue
        html[pk] = segment_html(
            utterance_id=uid,
            text=text,
            revision=revision,
            speaker_identity=identity,
            confidence=confidence,
            words=words,
            inner=highlighted.get(pk),
        )
    turns = []
    previous = index.spans[spans[0].index - 1].anchor if spans[0].index else -1
    for span in spans:
        # A segment deleted since the index was read is simply left out.
        segment_ids = index.segment_ids[span.first : span.first + span.count]
        pieces = [html[pk] for pk in segment_ids if pk in html]
        turns.append(
            PageTurn(
                anchor=span.anchor,
                has_anchor=span.anchor != previous,
                label=span.label,
                speaker=span.speaker,
                html=mark_safe(" ".join(pieces)),  # noqa: S308 - every piece was escaped
            )
        )
        previous = span.anchor
    return turns


# --- search -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchHit:
    segment_id: int
    start: float
    speaker: str
    html: SafeString
    page: int
    anchor: int
    language: str = ""
    """The language of ``html`` when it is a translation."""

    @property
    def label(self) -> str:
        return offset_label(self.start)


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    matched_ids: frozenset[int]
    hits: list[SearchHit]

    @property
    def count(self) -> int:
        return len(self.matched_ids)


def normalize_query(raw: str | None) -> str:
    return " ".join((raw or "").split())[:QUERY_MAX_LENGTH]


def uses_full_text_search() -> bool:
    return connection.vendor == "postgresql"


def search_config(session: VideoSession) -> str:
    """The text search configuration: the session's language when it has exactly one that
    PostgreSQL knows (stemming: "meetings" finds "meeting"), else ``simple``."""
    languages = session.languages or []
    if len(languages) == 1:
        return _PG_CONFIGS.get(str(languages[0]).lower()[:2], "simple")
    return "simple"


def transcript_search(
    *, session: VideoSession, index: TranscriptIndex, query: str, language: str = ""
) -> SearchResult:
    """The segments matching ``query`` (one scan of the session's segments), and the first
    ``SEARCH_HITS_SHOWN`` of them in time order with highlighted text and the page and
    anchor of their turn. With ``language``, a segment also matches by its translation into
    it, and hits show the translation where there is one.

    PostgreSQL full-text search (``websearch_to_tsquery`` syntax) on PostgreSQL; elsewhere,
    segments containing every word of the query (case-insensitive).
    """
    matches = _matching(_segments(session), query, search_config(session))
    if language:
        translations = SegmentTranslation.objects.filter(session_id=session.pk, language=language)
        found = _matching(translations, query, _PG_CONFIGS.get(language, "simple"))
        matches = _segments(session).filter(
            Q(id__in=matches.values("id")) | Q(id__in=found.values("segment_id"))
        )
    rows = list(matches.values_list("id", "start_offset", "speaker_name"))
    position = {pk: i for i, pk in enumerate(index.segment_ids)}
    # A segment stored after the index was read has no turn yet: leave it out.
    rows = [row for row in rows if row[0] in position]
    shown = rows[:SEARCH_HITS_SHOWN]
    ids = [pk for pk, _, _ in shown]
    html = highlight_segments(session=session, query=query, ids=ids, language=language)
    translated = page_translations(session, language, ids)
    hits = []
    nobody = unknown_speaker()
    for pk, start, name in shown:
        span = index.spans[index.turn_of_position[position[pk]]]
        hits.append(
            SearchHit(
                segment_id=pk,
                start=start,
                speaker=(name or "").strip() or nobody,
                html=html.get(pk, escape("")),
                page=index.page_of_turn(span.index),
                anchor=span.anchor,
                language=language if pk in translated else "",
            )
        )
    return SearchResult(query=query, matched_ids=frozenset(pk for pk, _, _ in rows), hits=hits)


def highlight_segments(
    *, session: VideoSession, query: str, ids: list[int], language: str = ""
) -> dict[int, SafeString]:
    """Escaped HTML of the segments ``ids`` of ``session`` with the matches of ``query`` in
    ``<mark>``: ``ts_headline`` on PostgreSQL (what matched, stems included), else the words.
    With ``language``: of their translation into it, where there is one."""
    if not ids:
        return {}
    translated: dict[int, SafeString] = {}
    if language:
        translations = SegmentTranslation.objects.filter(
            session_id=session.pk, language=language, segment_id__in=ids
        ).exclude(text="")
        config = _PG_CONFIGS.get(language, "simple")
        translated = _highlights(translations, "segment_id", query, config)
    segments = _segments(session).filter(id__in=[pk for pk in ids if pk not in translated])
    return {**_highlights(segments, "id", query, search_config(session)), **translated}


def _highlights(rows: QuerySet, key: str, query: str, config: str) -> dict[int, SafeString]:
    """``{row[key]: its text with the matches marked}``."""
    if not uses_full_text_search():
        words = query_words(query)
        return {pk: highlight_words(text, words) for pk, text in rows.values_list(key, "text")}
    headline = SearchHeadline(
        "text",
        SearchQuery(query, search_type="websearch", config=config),
        config=config,
        start_sel=_MARK_START,
        stop_sel=_MARK_STOP,
        highlight_all=True,
    )
    rows = rows.annotate(headline=headline)
    return {pk: _marked(text) for pk, text in rows.values_list(key, "headline")}


def _matching(rows: QuerySet, query: str, config: str) -> QuerySet:
    """The rows (segments or translations) whose ``text`` matches ``query``."""
    if not uses_full_text_search():
        return _words_in(rows, query)
    return rows.annotate(document=SearchVector("text", config=config)).filter(
        document=SearchQuery(query, search_type="websearch", config=config)
    )


def _marked(headline: str) -> SafeString:
    html = escape(headline).replace(_MARK_START, "<mark>").replace(_MARK_STOP, "</mark>")
    return mark_safe(html)  # noqa: S308 - escaped; only our own markers became tags


def query_words(query: str) -> list[str]:
    """The distinct words of a query for the fallback search, without quotes or operators."""
    words = [w.strip("\"'") for w in query.split()]
    return list(dict.fromkeys(w for w in words if w and w.lower() != "or" and w != "-"))[:10]


def highlight_words(text: str, words: list[str]) -> SafeString:
    """``text`` escaped, with every case-insensitive occurrence of ``words`` in ``<mark>``."""
    if not words:
        return escape(text)
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.I)
    pieces, last = [], 0
    for match in pattern.finditer(text):
        pieces += [escape(text[last : match.start()]), f"<mark>{escape(match.group())}</mark>"]
        last = match.end()
    pieces.append(escape(text[last:]))
    return mark_safe("".join(pieces))  # noqa: S308 - every piece was escaped


def fallback_search(session: VideoSession, query: str) -> QuerySet[TranscriptSegment]:
    """Segments containing every word of ``query`` (``icontains``): the search without
    PostgreSQL."""
    return _words_in(_segments(session), query)


def _words_in(rows: QuerySet, query: str) -> QuerySet:
    words = query_words(query)
    if not words:
        return rows.none()
    for word in words:
        rows = rows.filter(text__icontains=word)
    return rows


# --- talk time --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TalkTime:
    identity: str
    name: str
    seconds: float
    share: float
    segments: int
    turns: int

    @property
    def label(self) -> str:
        return offset_label(self.seconds)

    @property
    def percent(self) -> int:
        return round(self.share * 100)


def talk_time_list(*, session: VideoSession, index: TranscriptIndex) -> list[TalkTime]:
    """Talk time per speaker summed in the database, most talkative first, with every
    participant listed (those who never spoke at zero)."""
    totals = (
        TranscriptSegment.objects.filter(session_id=session.pk)
        .values("speaker_identity")
        .annotate(
            seconds=Sum(F("end_offset") - F("start_offset")),
            segments=Count("id"),
            name=Max("speaker_name"),
        )
        .order_by()
    )
    turns: dict[str, int] = {}
    for span in index.spans:
        turns[span.speaker_identity] = turns.get(span.speaker_identity, 0) + 1
    names = {p.identity: p.name for p in participant_list(session=session)}
    nobody = unknown_speaker()
    rows: dict[str, dict] = {
        identity: {"name": name, "seconds": 0.0, "segments": 0} for identity, name in names.items()
    }
    for row in totals:
        identity = row["speaker_identity"]
        entry = rows.setdefault(identity, {"name": row["name"], "seconds": 0.0, "segments": 0})
        entry["seconds"] = max(0.0, row["seconds"] or 0.0)
        entry["segments"] = row["segments"]
        if not identity:
            entry["name"] = nobody
    total = sum(entry["seconds"] for entry in rows.values()) or 1.0
    result = [
        TalkTime(
            identity=identity,
            name=(entry["name"] or "").strip() or nobody,
            seconds=entry["seconds"],
            share=entry["seconds"] / total,
            segments=entry["segments"],
            turns=turns.get(identity, 0),
        )
        for identity, entry in rows.items()
    ]
    return sorted(result, key=lambda t: (-t.seconds, t.name))
