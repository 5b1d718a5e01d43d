"""What a search across meetings answers: hits, pages of hits, hits grouped by session."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.translation import gettext

from rooms.errors import DomainError
from transcription.archive.transcript import offset_label, query_words

PER_PAGE_DEFAULT = 20
PER_PAGE_MAX = 50
MATCHES_RANKED = 500
"""Enough matches to rank: when a word is so common that ranking all its matches would be slow,
the search stops at the most recent sessions holding more than this many, ranks those, and
says there are more (``SearchPage.capped``). A word in 3 % of 2.5 million finals takes about a
second to rank in full, and nobody pages past the first few dozen (``postgres.py``;
benchmarks/search_fts.py, docs/benchmarks.md). The fallback without PostgreSQL reads at most
this many matches of each kind."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One final that matched, in its original words or in a stored translation."""

    segment_id: int
    session_id: int
    session_slug: str
    session_title: str
    space_slug: str
    started_at: datetime | None
    """When the session started."""
    start: float
    """Seconds into the session."""
    end: float
    speaker_name: str
    language: str
    text: str
    """The text that matched: the final, or the translation that matched."""
    snippet: str
    """Escaped HTML of (the part of) ``text`` around the matches, each in ``<mark>``."""
    rank: float
    url: str
    """The finished page at this moment: ``/sessions/<slug>/?q=<query>&t=<seconds>``, which
    redirects to the transcript page holding it, at its ``#t-<seconds>`` anchor."""
    space_name: str = ""
    translated: bool = False
    """``text`` is a stored translation (in ``language``), not the words as spoken."""

    @property
    def label(self) -> str:
        """``4:05``, ``1:02:05``: the moment as the finished page shows it."""
        return offset_label(self.start)


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit]
    total: int
    """How many finals matched (when ``capped``: in the sessions searched, so at least this
    many)."""
    page: int
    pages: int
    per_page: int = PER_PAGE_DEFAULT
    capped: bool = False
    """Only the most recent sessions were searched (the words are common): ``hits`` are the
    best of their matches."""


@dataclass(frozen=True, slots=True)
class SessionHits:
    """The hits of one session on a page, for showing them under its title."""

    session_slug: str
    session_title: str
    space_slug: str
    space_name: str
    started_at: datetime | None
    hits: list[SearchHit] = field(default_factory=list)


def group_by_session(hits: list[SearchHit]) -> list[SessionHits]:
    """The page's hits by session: sessions in the order of their best hit, each session's
    hits in the order they were said."""
    groups: dict[int, SessionHits] = {}
    for hit in hits:
        group = groups.get(hit.session_id)
        if group is None:
            group = groups[hit.session_id] = SessionHits(
                hit.session_slug, hit.session_title, hit.space_slug, hit.space_name, hit.started_at
            )
        group.hits.append(hit)
    for group in groups.values():
        group.hits.sort(key=lambda h: (h.start, h.segment_id))
    return list(groups.values())


def searchable(query: str) -> bool:
    """Whether ``query`` asks for something: at least one word not excluded with ``-``
    (``-budget`` alone would list every final without that word)."""
    return any(not word.startswith("-") for word in query_words(query))


def moment_url(*, session_slug: str, start: float, query: str = "") -> str:
    """The finished page at ``start`` seconds (the next whole second: the page's jump finds
    the turn being spoken then, and a turn starting at 12.4 s is not yet spoken at 12 s)."""
    params = {"q": query} if query else {}
    params["t"] = str(math.ceil(max(0.0, start)))
    return f"{reverse('sessions:detail', kwargs={'slug': session_slug})}?{urlencode(params)}"


class SearchTooSlow(DomainError):
    """The database gave up on a search (it ran past the statement timeout)."""

    code = "search_too_slow"
    status = 503

    def __init__(self) -> None:
        super().__init__(
            gettext("The search took too long. Add words or filters to narrow it, and retry.")
        )
