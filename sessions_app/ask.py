"""Ask the archive: answer a question from a space's meetings, citing the moments.

Retrieval is the cross-meeting search (``transcription.search.search_segments``), which only
ever returns segments of sessions the person may read: the question's content words, any of
them (best-ranked segments first), in the space (or one of its sessions). Each hit becomes a
numbered passage with the segments said just before and after it, for context.

Then, with the LLM configured, an answer written from those passages only: a list of claims,
each citing the passages it comes from (``[1]``, ``[2]``: links to the moments); the LLM may say
the passages do not answer the question. Without an LLM, or when the LLM fails or answers
something unusable, an extractive answer: the best passages, ranked and highlighted, labelled
as such (with a note saying why the LLM's answer is missing).

Nothing is stored: neither the question nor the answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.conf.locale import LANG_INFO
from django.db.models import Q
from django.http import Http404
from django.utils.translation import get_language, gettext, gettext_noop

from identity.models import User
from rooms.llm import LlmClient, LlmError, enabled, llm_config
from sessions_app.analysis.text import content_words, is_cyrillic, language_code
from sessions_app.models import VideoSession
from sessions_app.selectors import session_get_for_user
from spaces.models import Space
from transcription.archive.transcript import QUERY_MAX_LENGTH
from transcription.models import TranscriptSegment
from transcription.search import SearchHit, search_segments

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500
# The rate limit of questions (API and page share the count): the expensive calls' scope.
THROTTLE_SCOPE = "create"
# How many passages retrieval keeps, and how many segments of context each has on either side.
MAX_PASSAGES = 6
CONTEXT_SEGMENTS = 2
MAX_KEYWORDS = 12
# How long a question waits for the LLM (the setting may allow a minute).
LLM_TIMEOUT_SECONDS = 20.0
MAX_CLAIMS = 8

SYSTEM_PROMPT = (
    "You answer questions about a team's meetings. You are given numbered passages from the "
    "meetings' transcripts (speech recognition: some words may be misheard). Use only these "
    "passages, never outside knowledge. Answer with one JSON object and nothing else: "
    '{"found": true, "answer": [{"text": one sentence of the answer, "passages": [the numbers '
    "of the passages that say it]}]}. Every sentence cites at least one passage. When the "
    'passages do not answer the question, answer {"found": false, "answer": []}.'
)
WRITE_IN = "Write the answer in {language}, the language of the question."


class Mode:
    LLM = "llm"
    EXTRACTIVE = "extractive"
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class ContextLine:
    speaker_name: str
    text: str
    start: float
    # The line the search found (the others are said around it).
    is_hit: bool


@dataclass(frozen=True, slots=True)
class Passage:
    number: int
    session_slug: str
    session_title: str
    started_at: datetime | None
    start: float
    speaker_name: str
    language: str
    text: str
    # HTML-safe, the question's words in <mark>.
    snippet: str
    rank: float
    url: str
    lines: list[ContextLine] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Claim:
    text: str
    passages: list[int]


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    mode: str
    passages: list[Passage]
    claims: list[Claim] = field(default_factory=list)
    # Why the answer is extractive although an LLM is configured ("" otherwise).
    note: str = ""

    @property
    def found(self) -> bool:
        return self.mode != Mode.NOT_FOUND


def ask_session_get(*, user: User, space: Space, slug: str) -> VideoSession:
    """The session ``slug`` of ``space`` if ``user`` may read it, else 404 (a session of
    another space is not one to ask this space about)."""
    session = session_get_for_user(user=user, slug=slug)
    if session.space_id != space.pk:
        raise Http404("No such session")
    return session


def clean_question(raw: str) -> str:
    """The question on one line, trimmed (the caller checked its length)."""
    return " ".join(raw.split())


def keywords(question: str) -> list[str]:
    """The question's content words, each once, in order (stop words dropped), as many as
    an ``or`` query of them fits the search's query length."""
    picked: list[str] = []
    for word in dict.fromkeys(content_words(question)):
        if len(" or ".join([*picked, word])) > QUERY_MAX_LENGTH or len(picked) == MAX_KEYWORDS:
            break
        picked.append(word)
    return picked


def _context(hit: SearchHit) -> list[ContextLine]:
    """The hit with up to ``CONTEXT_SEGMENTS`` segments either side of it, in the
    transcript's order (start, then id)."""
    rows = TranscriptSegment.objects.filter(session_id=hit.session_id)
    fields = ("speaker_name", "text", "start_offset")
    here, pk = hit.start, hit.segment_id
    before = rows.filter(Q(start_offset__lt=here) | Q(start_offset=here, pk__lt=pk))
    after = rows.filter(Q(start_offset__gt=here) | Q(start_offset=here, pk__gt=pk))
    earlier = before.order_by("-start_offset", "-id").values_list(*fields)[:CONTEXT_SEGMENTS]
    later = after.order_by("start_offset", "id").values_list(*fields)[:CONTEXT_SEGMENTS]
    lines = [ContextLine(name, text, start, False) for name, text, start in list(earlier)[::-1]]
    lines.append(ContextLine(hit.speaker_name, hit.text, hit.start, True))
    lines += [ContextLine(name, text, start, False) for name, text, start in later]
    return lines


def _search(
    user: User, space: Space, session: VideoSession | None, words: list[str]
) -> list[SearchHit]:
    """The best hits for any of ``words``, best first: one ``or`` query (PostgreSQL ranks the
    finals saying more of them higher); where the search has no ``or`` (the SQLite fallback
    reads it as "all of them") and finds nothing, one query per word, merged by rank."""

    def one(query: str) -> list[SearchHit]:
        return search_segments(
            user=user, query=query, space=space, session=session, per_page=MAX_PASSAGES
        ).hits

    hits = one(" or ".join(words))
    if hits or len(words) == 1:
        return hits
    merged: dict[int, SearchHit] = {}
    for word in words:
        for hit in one(word):
            if hit.segment_id not in merged or merged[hit.segment_id].rank < hit.rank:
                merged[hit.segment_id] = hit
    return sorted(merged.values(), key=lambda h: -h.rank)[:MAX_PASSAGES]


def retrieve(
    *, user: User, space: Space, question: str, session: VideoSession | None = None
) -> list[Passage]:
    """The best passages for ``question`` among the meetings of ``space`` (or ``session``)
    that ``user`` may read, best first."""
    words = keywords(question)
    if not words:
        return []
    passages: list[Passage] = []
    for hit in _search(user, space, session, words):
        # The search checked access; this only keeps a scoped question inside its scope.
        if hit.space_slug != space.slug or (session is not None and hit.session_id != session.pk):
            continue
        passages.append(
            Passage(
                number=len(passages) + 1,
                session_slug=hit.session_slug,
                session_title=hit.session_title,
                started_at=hit.started_at,
                start=hit.start,
                speaker_name=hit.speaker_name,
                language=hit.language,
                text=hit.text,
                snippet=hit.snippet,
                rank=hit.rank,
                url=hit.url,
                lines=_context(hit),
            )
        )
    return passages


def _clock(seconds: float) -> str:
    total = max(int(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def passage_prompt(passage: Passage) -> str:
    """One numbered passage as the LLM reads it: where it is from, then its lines."""
    when = f", {passage.started_at.date().isoformat()}" if passage.started_at else ""
    head = f'[{passage.number}] Meeting "{passage.session_title}"{when}, at {_clock(passage.start)}'
    lines = [f"{line.speaker_name or 'Room'}: {line.text.strip()}" for line in passage.lines]
    return "\n".join([head, *lines])


def _question_language(question: str) -> str:
    if is_cyrillic(question):
        return "ru"
    return language_code(get_language() or settings.LANGUAGE_CODE)


def build_prompt(question: str, passages: list[Passage], max_chars: int) -> tuple[str, str]:
    """(system, user) messages; passages past the cap are left out, best ones kept."""
    name = LANG_INFO.get(_question_language(question), {}).get("name", "English")
    system = f"{SYSTEM_PROMPT} {WRITE_IN.format(language=name)}"
    user = f"Question: {question}\n\nPassages:"
    for passage in passages:
        block = f"\n\n{passage_prompt(passage)}"
        if len(system) + len(user) + len(block) > max_chars:
            break
        user += block
    return system, user


def _claims(answer: dict[str, Any], numbers: set[int]) -> tuple[bool, list[Claim]]:
    """The LLM's ``found`` flag and claims; raises ``LlmError`` when they are not what was
    asked (a claim without a citation, or citing a passage that was not given)."""
    found = answer.get("found")
    raw = answer.get("answer")
    if not isinstance(found, bool) or not isinstance(raw, list):
        raise LlmError(gettext_noop("the LLM answer is not the JSON asked for"))
    if not found:
        return False, []
    claims: list[Claim] = []
    for item in raw[:MAX_CLAIMS]:
        text = item.get("text") if isinstance(item, dict) else None
        cited = item.get("passages") if isinstance(item, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise LlmError(gettext_noop("a sentence of the LLM answer has no text"))
        if (
            not isinstance(cited, list)
            or not cited
            or any(isinstance(n, bool) or not isinstance(n, int) or n not in numbers for n in cited)
        ):
            raise LlmError(gettext_noop("a sentence of the LLM answer cites no given passage"))
        claims.append(Claim(" ".join(text.split())[:1000], sorted(set(cited))))
    if not claims:
        raise LlmError(gettext_noop("the LLM answer is empty"))
    return True, claims


def llm_answer(question: str, passages: list[Passage]) -> tuple[bool, list[Claim]]:
    """Ask the LLM; raises ``LlmError`` on any failure or an unusable answer."""
    config = llm_config(timeout_seconds=min(settings.LLM_TIMEOUT_SECONDS, LLM_TIMEOUT_SECONDS))
    system, user = build_prompt(question, passages, config.max_prompt_chars)
    sent = {p.number for p in passages if f"\n\n[{p.number}] Meeting " in user}
    with LlmClient(config) as client:
        reply = client.ask(system, user)
    return _claims(reply, sent)


def ask(*, user: User, space: Space, question: str, session: VideoSession | None = None) -> Answer:
    """Answer ``question`` from the meetings of ``space`` (or its ``session``) that ``user``
    may read. The caller checked that ``user`` is a member of ``space`` and that ``session``
    belongs to it."""
    question = clean_question(question)
    passages = retrieve(user=user, space=space, question=question, session=session)
    if not passages:
        return Answer(question=question, mode=Mode.NOT_FOUND, passages=[])
    if not enabled():
        return Answer(question=question, mode=Mode.EXTRACTIVE, passages=passages)
    try:
        found, claims = llm_answer(question, passages)
    except LlmError as exc:
        logger.warning("LLM answer failed, showing the best passages instead: %s", exc)
        note = gettext(
            "The LLM could not answer (%(reason)s): these are the passages that match best."
        ) % {"reason": exc.reason()}
        return Answer(question=question, mode=Mode.EXTRACTIVE, passages=passages, note=note)
    if not found:
        return Answer(question=question, mode=Mode.NOT_FOUND, passages=passages)
    cited = {n for claim in claims for n in claim.passages}
    return Answer(
        question=question,
        mode=Mode.LLM,
        passages=[p for p in passages if p.number in cited],
        claims=claims,
    )
