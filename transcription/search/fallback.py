"""Search across meetings without PostgreSQL (SQLite, ``make run``): the finished page's
fallback generalised — finals and translations containing every word of the query
(``icontains``; ``"a phrase"`` as written, ``or`` between alternatives, ``-word`` left out),
ranked by how often the words occur, the most recent sessions first among equals. Bounded like
the PostgreSQL search: at most ``MATCHES_RANKED`` matches of each kind are read."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from sessions_app.models import VideoSession
from transcription.archive.transcript import highlight_words
from transcription.models import SegmentTranslation, TranscriptSegment
from transcription.search.hits import MATCHES_RANKED, SearchHit, SearchPage, moment_url

_TOKEN = re.compile(r'"([^"]*)"?|(\S+)')


@dataclass(frozen=True, slots=True)
class Terms:
    """A web-search query read without a text search engine."""

    alternatives: list[list[str]]
    """Any of these lists of words or phrases, each all of them."""
    excluded: list[str]

    @property
    def shown(self) -> list[str]:
        """What to highlight."""
        return list(dict.fromkeys(term for terms in self.alternatives for term in terms))

    def condition(self, field: str) -> Q:
        """``field`` contains one of the alternatives and none of the excluded words."""
        found = Q()
        for terms in self.alternatives:
            every = Q()
            for term in terms:
                every &= _contains(field, term)
            found |= every
        for term in self.excluded:
            found &= ~_contains(field, term)
        return found


def _contains(field: str, term: str) -> Q:
    """``field`` contains ``term`` in any case. SQLite's LIKE ignores the case of ASCII letters
    only: other words are also looked for as written at the start of a sentence, in lower and
    in upper case."""
    variants = {term} if term.isascii() else {term, term.lower(), term.upper(), term.capitalize()}
    found = Q()
    for variant in sorted(variants):
        found |= Q(**{f"{field}__icontains": variant})
    return found


def terms(query: str) -> Terms:
    """``budget "next quarter" or hiring -draft`` → [[budget, next quarter], [hiring]], [draft]."""
    alternatives: list[list[str]] = [[]]
    excluded: list[str] = []
    for match in _TOKEN.finditer(query):
        phrase, word = match.groups()
        if phrase is None and word.lower() == "or":
            alternatives.append([])
        elif phrase is None and word.startswith("-"):
            if word.strip("-\"'"):
                excluded.append(word.strip("-\"'"))
        else:
            term = " ".join((phrase if phrase is not None else word).strip("\"'").split())
            if term:
                alternatives[-1].append(term)
    return Terms(alternatives=[a for a in alternatives if a][:10], excluded=excluded[:10])


def search(
    *,
    scope: QuerySet[VideoSession],
    query: str,
    speaker: str,
    language: str,
    page: int,
    per_page: int,
) -> SearchPage:
    wanted = terms(query)
    if not wanted.alternatives:
        return SearchPage(hits=[], total=0, page=page, pages=0, per_page=per_page)
    sessions = scope.values("id")
    segments = TranscriptSegment.objects.filter(wanted.condition("text"), session_id__in=sessions)
    translations = SegmentTranslation.objects.filter(
        wanted.condition("text"), session_id__in=sessions
    )
    if speaker:
        segments = segments.filter(speaker_name__icontains=speaker)
        translations = translations.filter(segment__speaker_name__icontains=speaker)
    if language:
        segments = segments.filter(language__istartswith=language)
        translations = translations.filter(language__istartswith=language)
    newest = ("-session_id", "start_offset", "id")
    originals = segments.order_by(*newest).values_list("id", "text", "language")
    originals = list(originals[: MATCHES_RANKED + 1])
    translated = translations.order_by(
        "-session_id", "segment__start_offset", "segment_id"
    ).values_list("id", "segment_id", "text", "language")
    translated = list(translated[: MATCHES_RANKED + 1])
    found: dict[int, tuple[int | None, str, str]] = {}
    for pk, text, lang in originals:
        found[pk] = (None, text, lang)
    for pk, segment_id, text, lang in translated:
        found.setdefault(segment_id, (pk, text, lang))
    capped = len(found) > MATCHES_RANKED
    shown = wanted.shown
    ranked = sorted(found.items(), key=lambda item: -_rank(item[1][1], shown))[:MATCHES_RANKED]
    total = len(ranked)
    return SearchPage(
        hits=_hits(ranked[(page - 1) * per_page : page * per_page], query, shown),
        total=total,
        page=page,
        pages=math.ceil(total / per_page),
        per_page=per_page,
        capped=capped,
    )


def _rank(text: str, words: list[str]) -> float:
    return float(sum(len(re.findall(re.escape(w), text, re.IGNORECASE)) for w in words))


def _hits(
    shown: list[tuple[int, tuple[int | None, str, str]]], query: str, words: list[str]
) -> list[SearchHit]:
    segments = {
        s.pk: s
        for s in TranscriptSegment.objects.filter(pk__in=[pk for pk, _ in shown])
        .select_related("session__space")
        .only(
            "session__slug",
            "session__title",
            "session__started_at",
            "session__space__slug",
            "session__space__name",
            "start_offset",
            "end_offset",
            "speaker_name",
        )
    }
    hits = []
    for pk, (translation_id, text, language) in shown:
        segment = segments.get(pk)
        if segment is None:  # deleted since it was found
            continue
        session = segment.session
        hits.append(
            SearchHit(
                segment_id=pk,
                session_id=session.pk,
                session_slug=session.slug,
                session_title=session.title,
                space_slug=session.space.slug,
                started_at=session.started_at,
                start=segment.start_offset,
                end=segment.end_offset,
                speaker_name=segment.speaker_name,
                language=language,
                text=text,
                snippet=highlight_words(text, words),
                rank=_rank(text, words),
                url=moment_url(session_slug=session.slug, start=segment.start_offset, query=query),
                space_name=session.space.name,
                translated=translation_id is not None,
            )
        )
    return hits
