"""Catch me up: a short summary of a session so far, for whoever joins late.

Made from the stored finals (what the live sidebar's history shows) by the offline analyser, or
by the LLM when the analysis provider is the LLM (falling back to the offline summary, with a
note, on any LLM error). Each point links to the final it comes from (its utterance id, which
the live sidebar's lines carry, and its start for ``?t=``).

A summary is computed at most once per ``REFRESH_SECONDS`` per session and shared by everybody
who asks: it lives in Django's cache (Redis when configured, so every process shares it), and
a lock key in the same cache makes people who ask while it is being computed wait for that one
computation instead of starting their own.

Like the after-session analysis, the summary is read by everybody, so the text it writes (the
room's name, a fallback note) is in the meeting's language.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from rooms.llm import LlmClient, LlmError, llm_config
from sessions_app.analysis import meeting_language_active, offline
from sessions_app.analysis.llm import language_instruction
from sessions_app.analysis.text import ends_sentence, sentences_of, transcript_language
from sessions_app.analysis.types import AnalysisInput, Utterance
from sessions_app.models import VideoSession
from transcription.models import TranscriptSegment

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 30
"""A session's summary is computed at most once in this many seconds, then shared."""
# How long an interactive catch-up waits for the LLM (the setting may allow a minute).
LLM_TIMEOUT_SECONDS = 20.0
# How long others wait for a computation in progress before computing it themselves (a
# computation that takes longer died with its process).
LOCK_SECONDS = LLM_TIMEOUT_SECONDS + 10.0
_POLL_SECONDS = 0.1
MAX_POINTS = 8
"""The most points a summary has (the offline one has at most 8 sentences anyway)."""
MAX_TOPICS = 5
CACHE_PREFIX = "catch-up"

SYSTEM_PROMPT = (
    "You help someone who joins a meeting late catch up with what was said so far. Lines look "
    "like '[seconds] Speaker: text'. Answer with one JSON object and nothing else: "
    '{"points": [2 to 6 objects {"text": one short sentence: what was said, asked or decided, '
    'and by whom, "start": the [seconds] number of the line it comes from}], '
    '"topics": [up to 5 short noun phrases]}. Use only what the transcript says.'
)


@dataclass(frozen=True, slots=True)
class CatchUpPoint:
    text: str
    start: float
    utterance_id: str
    speaker_name: str


@dataclass(frozen=True, slots=True)
class CatchUp:
    # "offline", "llm", or "none" when nothing has been said yet.
    provider: str
    points: list[CatchUpPoint]
    topics: list[str]
    # How many finals it read, and the end of the last one (session seconds).
    segments: int
    up_to: float
    computed_at: datetime
    # Set when the LLM failed and the offline summary answered (in the meeting's language).
    note: str = ""
    # The meeting's language (ISO 639-1; "" unknown): the language the points are in.
    language: str = ""


@dataclass(frozen=True, slots=True)
class _Line:
    utterance: Utterance
    utterance_id: str


def _cache_key(session_id: int) -> str:
    return f"{CACHE_PREFIX}:{session_id}"


def _lock_key(session_id: int) -> str:
    return f"{CACHE_PREFIX}:{session_id}:lock"


def _stored(value: Any) -> CatchUp | None:
    if not isinstance(value, dict):
        return None
    points = [CatchUpPoint(**point) for point in value["points"]]
    return CatchUp(**{**value, "points": points})


def _lines(session: VideoSession) -> list[_Line]:
    rows = (
        TranscriptSegment.objects.filter(session=session)
        .order_by("start_offset", "id")
        .values_list(
            "utterance_id", "speaker_identity", "speaker_name", "text", "start_offset",
            "end_offset", "language",
        )
    )  # fmt: skip
    return [
        _Line(Utterance(identity, name, text, start, end, language=language), uid)
        for uid, identity, name, text, start, end, language in rows
        if text.strip()
    ]


def _session_language(session: VideoSession) -> str:
    """The session's language when it was fixed to exactly one, else ""."""
    languages = session.languages if isinstance(session.languages, list) else []
    if len(languages) == 1 and isinstance(languages[0], str):
        return languages[0]
    return ""


def _as_sentence(text: str) -> str:
    text = text.strip()
    text = text[0].upper() + text[1:] if text else text
    return text if ends_sentence(text) else text + "."


def offline_points(lines: list[_Line], data: AnalysisInput) -> tuple[list[CatchUpPoint], list[str]]:
    """The offline analyser's summary sentences, each with the final it was said in, and its
    topics."""
    utterances = [line.utterance for line in lines]
    sentences = sentences_of(utterances)
    topics = offline.extract_topics(utterances, names=data.known_names, limit=MAX_TOPICS)
    summary = offline.summarise(sentences, topics)
    # The summary is its sentences as said, in order, joined by spaces: find each one's source.
    source = {id(line.utterance): line for line in lines}
    points: list[CatchUpPoint] = []
    position = 0
    for sentence in sentences:
        shown = _as_sentence(sentence.text)
        if summary.startswith(shown, position):
            position += len(shown) + 1
            line = source[id(sentence.utterance)]
            points.append(
                CatchUpPoint(
                    text=shown,
                    start=line.utterance.start,
                    utterance_id=line.utterance_id,
                    speaker_name=line.utterance.speaker_name or data.room_name,
                )
            )
    return points, topics


def _prompt_lines(lines: list[_Line], budget: int, room_name: str) -> list[str]:
    """The latest transcript lines that fit ``budget`` characters, in order."""
    picked: list[str] = []
    size = 0
    for line in reversed(lines):
        u = line.utterance
        text = f"[{int(u.start)}] {u.speaker_name or room_name}: {u.text.strip()}"[:1000]
        if size + len(text) + 1 > budget:
            break
        picked.append(text)
        size += len(text) + 1
    return picked[::-1]


def _line_at(lines: list[_Line], seconds: float) -> _Line | None:
    """The final that a ``[seconds]`` label names: the last one started by then."""
    found = None
    for line in lines:
        if int(line.utterance.start) > seconds:
            break
        found = line
    return found


def llm_points(lines: list[_Line], data: AnalysisInput) -> tuple[list[CatchUpPoint], list[str]]:
    """The LLM's points and topics; raises ``LlmError`` on any failure or a bad answer.

    The LLM reads the latest lines that fit ``LLM_MAX_PROMPT_CHARS`` (about the last half hour
    at the default cap): a late joiner's catch-up favours what was said recently."""
    config = llm_config(timeout_seconds=min(settings.LLM_TIMEOUT_SECONDS, LLM_TIMEOUT_SECONDS))
    language = transcript_language(data.utterances, data.language)
    system = f"{SYSTEM_PROMPT} {language_instruction(language)}"
    prompt = "\n".join(
        _prompt_lines(lines, max(config.max_prompt_chars - len(system) - 20, 200), data.room_name)
    )
    with LlmClient(config) as client:
        answer = client.ask(system, prompt)
    raw_points = answer.get("points")
    if not isinstance(raw_points, list) or not raw_points:
        raise LlmError(gettext_noop("the LLM answer has no list of points"))
    points: list[CatchUpPoint] = []
    for raw in raw_points[:MAX_POINTS]:
        text = raw.get("text") if isinstance(raw, dict) else None
        start = raw.get("start") if isinstance(raw, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise LlmError(gettext_noop("a point in the LLM answer has no text"))
        if isinstance(start, bool) or not isinstance(start, int | float):
            raise LlmError(gettext_noop("a point in the LLM answer has no start"))
        line = _line_at(lines, float(start))
        if line is None:
            raise LlmError(gettext_noop("a point in the LLM answer names no transcript line"))
        points.append(
            CatchUpPoint(
                text=" ".join(text.split())[:500],
                start=line.utterance.start,
                utterance_id=line.utterance_id,
                speaker_name=line.utterance.speaker_name or data.room_name,
            )
        )
    topics = answer.get("topics", [])
    if not isinstance(topics, list):
        topics = []
    clean = [" ".join(t.split())[:80] for t in topics if isinstance(t, str) and t.strip()]
    return points, clean[:MAX_TOPICS]


def catch_up_compute(*, session: VideoSession) -> CatchUp:
    """Summarise the session's stored finals now (no cache)."""
    lines = _lines(session)
    now = timezone.now()
    if not lines:
        return CatchUp(
            provider="none", points=[], topics=[], segments=0, up_to=0.0, computed_at=now
        )
    utterances = [line.utterance for line in lines]
    names = list(session.participants.values_list("name", flat=True))
    data = AnalysisInput(
        utterances=utterances,
        known_names=list(dict.fromkeys(names)),
        language=_session_language(session),
    )
    language = transcript_language(utterances, data.language)
    note = ""
    with meeting_language_active(data):
        data = dataclasses.replace(data, room_name=gettext("Room"))
        provider = "offline"
        if settings.ANALYSIS_PROVIDER == "llm":
            try:
                points, topics = llm_points(lines, data)
                provider = "llm"
            except LlmError as exc:
                logger.warning("LLM catch-up failed, falling back to offline: %s", exc)
                note = gettext(
                    "The LLM could not summarise (%(reason)s); this is the offline summary."
                ) % {"reason": exc.reason()}
        if provider == "offline":
            points, topics = offline_points(lines, data)
    return CatchUp(
        provider=provider,
        points=points,
        topics=topics,
        segments=len(lines),
        up_to=max(line.utterance.end for line in lines),
        computed_at=now,
        note=note,
        language=language,
    )


def catch_up_for(*, session: VideoSession) -> CatchUp:
    """The session's summary so far, computed at most once per ``REFRESH_SECONDS`` and shared.

    The caller checked that the person may read the session. Nothing said yet is answered
    without the analyser and not kept, so the first final is summarised as soon as it exists.
    """
    key, lock = _cache_key(session.pk), _lock_key(session.pk)
    deadline = time.monotonic() + LOCK_SECONDS
    while True:
        found = _stored(cache.get(key))
        if found is not None:
            return found
        locked = cache.add(lock, 1, timeout=LOCK_SECONDS)
        if locked or time.monotonic() > deadline:
            break
        time.sleep(_POLL_SECONDS)
    try:
        if locked:
            # The holder before us may have stored its result between our read and our lock.
            found = _stored(cache.get(key))
            if found is not None:
                return found
        result = catch_up_compute(session=session)
        if result.segments:
            cache.set(key, dataclasses.asdict(result), timeout=REFRESH_SECONDS)
        return result
    finally:
        if locked:
            cache.delete(lock)
