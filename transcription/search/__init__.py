"""Search across meetings: the stored finals (as corrected) and their stored translations, in
every session of the spaces a person belongs to — and never in any other.

``search_segments`` is the one selector the search pages, ``GET /api/search`` and "ask the
archive" call. Access is part of the query itself: the sessions searched are those of
``sessions_app.selectors.session_list_for_user`` (a membership row must exist when the query
runs), narrowed by the filters; a space or session passed in never widens that.

PostgreSQL: full-text search over a stored, language-aware ``tsvector`` with GIN indexes
(migration ``0009_search``), ranked with ``ts_rank_cd``, the newest sessions first in rounds so
that a common word stays fast; snippets by ``ts_headline`` for the page's hits only
(``postgres.py``). Elsewhere (SQLite in development): the finished page's
fallback, generalised — finals containing every word, case-insensitive (``fallback.py``).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from identity.models import User
from sessions_app.models import VideoSession
from sessions_app.selectors import session_list_for_user
from spaces.models import Space
from transcription.archive.transcript import normalize_query
from transcription.search import fallback, postgres
from transcription.search.hits import (
    MATCHES_RANKED,
    PER_PAGE_DEFAULT,
    PER_PAGE_MAX,
    SearchHit,
    SearchPage,
    SearchTooSlow,
    SessionHits,
    group_by_session,
    moment_url,
    searchable,
)

__all__ = [
    "MATCHES_RANKED",
    "PER_PAGE_DEFAULT",
    "PER_PAGE_MAX",
    "SearchHit",
    "SearchPage",
    "SearchTooSlow",
    "SessionHits",
    "group_by_session",
    "moment_url",
    "search_segments",
    "searchable",
    "session_scope",
]


def session_scope(
    *,
    user: User,
    space: Space | None = None,
    session: VideoSession | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[VideoSession]:
    """The sessions ``user`` may search, narrowed by the filters. The day of a session is the
    day it started (or was created, never started), in the current time zone; both ends are
    included."""
    scope = session_list_for_user(user=user)
    if space is not None:
        scope = scope.filter(space_id=space.pk)
    if session is not None:
        scope = scope.filter(pk=session.pk)
    zone = timezone.get_current_timezone()
    if date_from is not None:
        start = datetime.combine(date_from, time.min, tzinfo=zone)
        scope = scope.filter(
            Q(started_at__gte=start) | Q(started_at__isnull=True, created_at__gte=start)
        )
    if date_to is not None:
        end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=zone)
        scope = scope.filter(Q(started_at__lt=end) | Q(started_at__isnull=True, created_at__lt=end))
    return scope


def search_segments(
    *,
    user: User,
    query: str,
    space: Space | None = None,
    session: VideoSession | None = None,
    speaker: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    language: str = "",
    page: int = 1,
    per_page: int = PER_PAGE_DEFAULT,
) -> SearchPage:
    """Page ``page`` of the finals matching ``query`` in the sessions ``user`` may read, best
    first.

    ``query`` is web-search syntax (words, ``"a phrase"``, ``or``, ``-excluded``); ``speaker``
    matches part of the speaker's name (case-insensitive); ``language`` (ISO 639-1) keeps the
    finals spoken in it and the translations into it; ``space`` and ``session`` narrow the
    search to one space or session, ``date_from``/``date_to`` to the sessions that started on
    those days. ``per_page`` is brought within 1 to ``PER_PAGE_MAX``; a page past the last is
    empty. A person who is no longer a member of a space finds nothing in it.
    """
    query = normalize_query(query)
    per_page = min(max(1, per_page), PER_PAGE_MAX)
    page = max(1, page)
    if not user.is_authenticated or not searchable(query):
        return SearchPage(hits=[], total=0, page=page, pages=0, per_page=per_page)
    scope = session_scope(
        user=user, space=space, session=session, date_from=date_from, date_to=date_to
    )
    backend = postgres if connection.vendor == "postgresql" else fallback
    return backend.search(
        scope=scope,
        query=query,
        speaker=" ".join(speaker.split())[:120],
        language=language.strip().lower()[:2],
        page=page,
        per_page=per_page,
    )
