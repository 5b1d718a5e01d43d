"""Search across meetings on PostgreSQL: full-text search over the stored ``search_vector`` of
segments and translations (migration ``0009_search``), ranked, with snippets.

A row's vector is built with the configuration of its language (``SEARCH_CONFIG``), so the
query is parsed in each of those configurations and the distinct results are OR-ed: Russian
finals match the Russian stems of the query, English finals the English ones, the rest its
plain words. They go into the SQL as ``tsquery`` constants, so the planner estimates how many
rows match from the column's statistics.

Ranking every match of a common word is what costs: each match is a row read from the table
(a word in 3 % of 2.5 million finals took about a second to rank). So the sessions are searched
newest first, in rounds. The first round takes as many of the newest sessions as should hold
about ``1.5 × MATCHES_RANKED`` matches, by the planner's estimate of how many finals match
(10 to 100 sessions); each next round four times as many, until a round finds more than
``MATCHES_RANKED`` matches or covers every session. A rare word is a few cheap rounds ending
with every session (an exact total); a common word is one round over a few recent sessions,
whose matches are ranked, and the answer says there may be more (``capped``). Within a round
PostgreSQL chooses how to combine the GIN index with the ``session_id`` index.
benchmarks/search_fts.py measures it.

A second query reads the page's rows with ``ts_headline`` snippets.
"""

from __future__ import annotations

import json
import math

from django.db import OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.utils.html import escape
from django.utils.safestring import mark_safe

from sessions_app.models import VideoSession
from transcription.search.hits import (
    MATCHES_RANKED,
    SearchHit,
    SearchPage,
    SearchTooSlow,
    moment_url,
)

SEARCH_CONFIG = (
    "CASE lower(left({column}, 2)) WHEN 'ru' THEN 'russian'::regconfig "
    "WHEN 'en' THEN 'english'::regconfig ELSE 'simple'::regconfig END"
)
"""The configuration of a row's vector, by its language (as in migration ``0009_search``)."""
CONFIGS = ("english", "russian", "simple")
RANK_NORMALISATION = 1
"""``ts_rank_cd``: divided by 1 + log(length), so a short final that says it ranks higher."""
# ts_headline wraps matches in these; control characters never occur in STT text, and escape()
# leaves them alone, so they survive escaping and are then turned into <mark> tags.
_MARK_START, _MARK_STOP = "\x02", "\x03"
HEADLINE_OPTIONS = f"StartSel={_MARK_START}, StopSel={_MARK_STOP}, MaxWords=40, MinWords=20"
STATEMENT_TIMEOUT_MS = 5000
"""A search that takes longer is cancelled (``SearchTooSlow``) instead of holding a core."""
QUERY_CANCELED = "57014"
FIRST_ROUND_SESSIONS = (10, 100)
"""The fewest and the most sessions a first round searches. The most: the planner estimates
words that are said together ("budget review", a phrase) as if they were independent, far
too rare; a round over fewer sessions costs little when the words are rare after all."""


class Matches:
    """The SQL that finds the matches of one search in some sessions, with its parameters."""

    def __init__(self, *, tsqueries: list[str], speaker: str, language: str) -> None:
        self.q = " || ".join(["%s::tsquery"] * len(tsqueries))
        self.q_params: list[object] = list(tsqueries)
        self.segment_where = [f"s.search_vector @@ ({self.q})"]
        self.segment_params: list[object] = [*self.q_params]
        self.translation_where = [f"t.search_vector @@ ({self.q})"]
        self.translation_params: list[object] = [*self.q_params]
        if speaker:
            self.segment_where.append("s.speaker_name ILIKE %s")
            self.segment_params.append(_like(speaker))
            self.translation_where.append(
                "EXISTS (SELECT 1 FROM transcription_transcriptsegment o "
                "WHERE o.id = t.segment_id AND o.speaker_name ILIKE %s)"
            )
            self.translation_params.append(_like(speaker))
        if language:
            self.segment_where.append("lower(left(s.language, 2)) = %s")
            self.segment_params.append(language)
            self.translation_where.append("lower(left(t.language, 2)) = %s")
            self.translation_params.append(language)

    def _found(self, session_match: str, session_params: list[object]) -> tuple[str, list]:
        rank = f"ts_rank_cd({{v}}, ({self.q}), {RANK_NORMALISATION})"
        segment_where = " AND ".join([f"s.session_id {session_match}", *self.segment_where])
        translation_where = " AND ".join([f"t.session_id {session_match}", *self.translation_where])
        sql = f"""
            SELECT s.id AS segment_id, NULL::bigint AS translation_id, s.session_id,
                   {rank.format(v="s.search_vector")} AS rank
            FROM transcription_transcriptsegment s
            WHERE {segment_where}
            UNION ALL
            SELECT t.segment_id, t.id, t.session_id, {rank.format(v="t.search_vector")}
            FROM transcription_segmenttranslation t
            WHERE {translation_where}
        """  # noqa: S608 - only our own SQL is formatted in; every value is a parameter
        params = [
            *self.q_params,
            *session_params,
            *self.segment_params,
            *self.q_params,
            *session_params,
            *self.translation_params,
        ]
        return sql, params

    def ranked(self, session_ids: list[int]) -> tuple[str, list[object]]:
        """Every match in the sessions ``session_ids``, with its rank."""
        return self._found("= ANY(%s::bigint[])", [session_ids])


def _like(value: str) -> str:
    """``value`` as a LIKE pattern matching it anywhere, its wildcards taken literally."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def tsqueries(cursor: CursorWrapper, query: str) -> list[str]:
    """``query`` parsed in each configuration, each distinct non-empty result once (English and
    Russian read Latin words the same way; stop words alone parse to nothing)."""
    cursor.execute(
        "SELECT " + ", ".join(["websearch_to_tsquery(%s::regconfig, %s)::text"] * len(CONFIGS)),
        [value for config in CONFIGS for value in (config, query)],
    )
    return [q for q in dict.fromkeys(cursor.fetchone()) if q]


def _dedup_sql(found: str) -> str:
    """Each segment once: its original when both it and a translation matched."""
    return f"""
        SELECT DISTINCT ON (segment_id) segment_id, translation_id, session_id, rank
        FROM ({found}) AS found
        ORDER BY segment_id, translation_id IS NOT NULL, rank DESC
    """  # noqa: S608 - only our own SQL is formatted in


def _page_sql(found: str) -> str:
    return f"""
        SELECT segment_id, translation_id, rank, count(*) OVER ()
        FROM ({_dedup_sql(found)}) AS best
        ORDER BY rank DESC, session_id DESC, segment_id
        LIMIT %s OFFSET %s
    """  # noqa: S608 - only our own SQL is formatted in


def estimated_per_session(cursor: CursorWrapper, matches: Matches) -> float:
    """How many finals of a session match (words and filters), on average, by the planner's
    statistics."""
    cursor.execute(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM transcription_transcriptsegment s "  # noqa: S608
        f"WHERE {' AND '.join(matches.segment_where)}",
        matches.segment_params,
    )
    plan = cursor.fetchone()[0]
    rows = float((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])
    cursor.execute(
        "SELECT reltuples FROM pg_class WHERE oid = 'sessions_app_videosession'::regclass"
    )
    sessions = float(cursor.fetchone()[0])
    return rows / sessions if sessions > 0 else 0.0


def first_round(per_session: float, sessions: int) -> int:
    """How many of the newest sessions the first round searches."""
    fewest, most = FIRST_ROUND_SESSIONS
    wanted = math.ceil(1.5 * MATCHES_RANKED / per_session) if per_session > 0 else sessions
    return min(max(fewest, wanted), most, sessions)


def session_ids(scope: QuerySet[VideoSession]) -> list[int]:
    """The ids of the sessions searched, newest first."""
    newest = Coalesce(F("started_at"), F("created_at")).desc()
    return list(scope.order_by(newest, "-id").values_list("id", flat=True))


def search(
    *,
    scope: QuerySet[VideoSession],
    query: str,
    speaker: str,
    language: str,
    page: int,
    per_page: int,
) -> SearchPage:
    try:
        return _search(
            scope=scope,
            query=query,
            speaker=speaker,
            language=language,
            page=page,
            per_page=per_page,
        )
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", "") == QUERY_CANCELED:
            raise SearchTooSlow() from exc
        raise


def _search(
    *,
    scope: QuerySet[VideoSession],
    query: str,
    speaker: str,
    language: str,
    page: int,
    per_page: int,
) -> SearchPage:
    offset = (page - 1) * per_page
    rows: list[tuple] = []
    total = 0
    capped = False
    with transaction.atomic(), connection.cursor() as cursor:
        # Searches are short: compiling them (JIT) costs more than it saves.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
        parsed = tsqueries(cursor, query)
        ids = session_ids(scope) if parsed else []
        if ids:
            matches = Matches(tsqueries=parsed, speaker=speaker, language=language)
            count = first_round(estimated_per_session(cursor, matches), len(ids))
            while True:
                sql, params = matches.ranked(ids[:count])
                cursor.execute(_page_sql(sql), [*params, per_page, offset])
                rows = cursor.fetchall()
                if rows or not offset:
                    total = rows[0][3] if rows else 0
                else:  # a page past the last: count them
                    cursor.execute(
                        f"SELECT count(*) FROM ({_dedup_sql(sql)}) AS counted",  # noqa: S608
                        params,
                    )
                    total = cursor.fetchone()[0]
                capped = count < len(ids)
                if not capped or total > MATCHES_RANKED:
                    break
                count *= 4
        hits = _hits(cursor, rows, query=query, tsqueries=parsed) if rows else []
    return SearchPage(
        hits=hits,
        total=total,
        page=page,
        pages=math.ceil(total / per_page),
        per_page=per_page,
        capped=capped,
    )


def _marked(headline: str) -> str:
    html = escape(headline).replace(_MARK_START, "<mark>").replace(_MARK_STOP, "</mark>")
    return mark_safe(html)  # noqa: S308 - escaped; only our own markers became tags


def _hits(
    cursor: CursorWrapper, rows: list[tuple], *, query: str, tsqueries: list[str]
) -> list[SearchHit]:
    """The page's hits, in the order of ``rows``, with their snippets."""
    ranks = {row[0]: row[2] for row in rows}
    config = SEARCH_CONFIG.format(column="coalesce(t.language, s.language)")
    q = " || ".join(["%s::tsquery"] * len(tsqueries))
    sql = f"""
        SELECT s.id, s.session_id, s.start_offset, s.end_offset, s.speaker_name,
               coalesce(t.language, s.language), coalesce(t.text, s.text), t.id IS NOT NULL,
               ts_headline({config}, coalesce(t.text, s.text), ({q}), %s)
        FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY AS p(segment_id, translation_id, n)
        JOIN transcription_transcriptsegment s ON s.id = p.segment_id
        LEFT JOIN transcription_segmenttranslation t ON t.id = p.translation_id
        ORDER BY p.n
    """  # noqa: S608 - only our own SQL is formatted in; every value is a parameter
    ids = [row[0] for row in rows]
    cursor.execute(sql, [*tsqueries, HEADLINE_OPTIONS, ids, [row[1] for row in rows]])
    found = cursor.fetchall()
    sessions = {
        s.pk: s
        for s in VideoSession.objects.filter(pk__in={row[1] for row in found})
        .select_related("space")
        .only("slug", "title", "started_at", "space__slug", "space__name")
    }
    hits = []
    for pk, session_id, start, end, speaker, language, text, translated, headline in found:
        session = sessions[session_id]
        hits.append(
            SearchHit(
                segment_id=pk,
                session_id=session_id,
                session_slug=session.slug,
                session_title=session.title,
                space_slug=session.space.slug,
                started_at=session.started_at,
                start=start,
                end=end,
                speaker_name=speaker,
                language=language,
                text=text,
                snippet=_marked(headline),
                rank=float(ranks[pk]),
                url=moment_url(session_slug=session.slug, start=start, query=query),
                space_name=session.space.name,
                translated=translated,
            )
        )
    return hits


def explain_sql(*, scope: QuerySet[VideoSession], query: str) -> tuple[str, list[object], int]:
    """The first round's query for the first page, its parameters and how many sessions it
    covers (for ``EXPLAIN`` in the benchmark)."""
    with transaction.atomic(), connection.cursor() as cursor:
        parsed = tsqueries(cursor, query)
        ids = session_ids(scope)
        matches = Matches(tsqueries=parsed, speaker="", language="")
        count = first_round(estimated_per_session(cursor, matches), len(ids))
    sql, params = matches.ranked(ids[:count])
    return _page_sql(sql), [*params, 20, 0], min(count, len(ids))
