"""The optional LLM analyser: an OpenAI-compatible ``POST {base}/chat/completions``.

The transcript goes out as ``[seconds] Name: text`` lines. A transcript longer than the prompt
cap is cut into chunks at line boundaries; each chunk is analysed on its own, then one more
request combines the chunk summaries and topics. Action items keep their chunk's answer.
Every prompt names the meeting's language (the one most of its segments were said in) and asks
for the summary, topics and action items in it, whatever language the instructions are in.
Speaker stats are always computed locally. Any failure (network, timeout, HTTP status, a reply
that is not the JSON asked for) raises ``LlmError``; the caller falls back to the offline
analyser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf.locale import LANG_INFO
from django.utils.translation import gettext_noop

from rooms.llm import LlmClient, LlmConfig, LlmError
from sessions_app.analysis.text import transcript_language
from sessions_app.analysis.types import ActionItem, AnalysisInput, Utterance

PROVIDER = "llm"
MAX_TOPICS = 10
MAX_ACTION_ITEMS = 50

SYSTEM_PROMPT = (
    "You analyse meeting transcripts. Lines look like '[seconds] Speaker: text'. "
    "Answer with one JSON object and nothing else: "
    '{"summary": string (3 to 6 sentences), "topics": [up to 8 short noun phrases], '
    '"action_items": [{"text": string, "owner": speaker or person named, or null, '
    '"due": the due phrase as said (e.g. "by Friday"), or null, '
    '"start": the [seconds] number of the line it was said on, or null}]}. '
    "The transcript comes from speech recognition and may contain misheard words: an action "
    "item must name something to do and what it is done to (a verb and its object); leave out "
    "lines that do not make sense as said."
)
COMBINE_PROMPT = (
    "Below are summaries and topics of consecutive parts of one meeting. Combine them. "
    'Answer with one JSON object and nothing else: {"summary": string (3 to 6 sentences), '
    '"topics": [up to 8 short noun phrases]}.'
)
WRITE_IN = (
    "Write in {language}, the language of the meeting: the summary, the topics and each action "
    "item's text and due phrase, as its participants would."
)
WRITE_IN_UNKNOWN = (
    "Write in the language the meeting was held in: the summary, the topics and each action "
    "item's text and due phrase."
)
_NO_SUMMARY = gettext_noop("the LLM answer has no valid summary")
_NO_ITEM_TEXT = gettext_noop("the LLM answer has no valid action item text")
_NO_OWNER = gettext_noop("the LLM answer has no valid owner")
_NO_DUE = gettext_noop("the LLM answer has no valid due phrase")


def language_instruction(language: str) -> str:
    """The prompt's sentence asking for the meeting's ``language`` (ISO 639-1; "" unknown)."""
    name = LANG_INFO.get(language, {}).get("name")
    return WRITE_IN.format(language=name) if name else WRITE_IN_UNKNOWN


@dataclass(slots=True)
class LlmAnswer:
    summary: str
    topics: list[str]
    action_items: list[ActionItem]
    requests: int


def transcript_lines(utterances: list[Utterance]) -> list[str]:
    return [f"[{int(u.start)}] {u.speaker_name or 'Room'}: {u.text.strip()}" for u in utterances]


def chunk_lines(lines: list[str], max_chars: int) -> list[str]:
    """Consecutive lines joined into chunks of at most ``max_chars`` (a longer line is cut)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = line[:max_chars]
        if current and size + len(line) + 1 > max_chars:
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        chunks.append("\n".join(current))
    return chunks


def _text(value: Any, missing: str, *, optional: bool = False) -> str | None:
    """``value`` as a trimmed string; ``missing`` (a ``gettext_noop`` msgid) says which field
    was not one."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not optional and not value.strip()):
        raise LlmError(missing)
    return value.strip()[:2000] or None


def _topics(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise LlmError(gettext_noop("the LLM answer's topics are not a list of strings"))
    seen: dict[str, str] = {}
    for topic in value:
        clean = " ".join(topic.split())[:80]
        if clean:
            seen.setdefault(clean.lower(), clean)
    return list(seen.values())[:MAX_TOPICS]


def _action_items(value: Any) -> list[ActionItem]:
    if not isinstance(value, list):
        raise LlmError(gettext_noop("the LLM answer's action items are not a list"))
    items: list[ActionItem] = []
    for raw in value[:MAX_ACTION_ITEMS]:
        if not isinstance(raw, dict):
            raise LlmError(gettext_noop("an action item in the LLM answer is not an object"))
        start = raw.get("start")
        if start is not None and (isinstance(start, bool) or not isinstance(start, int | float)):
            raise LlmError(gettext_noop("an action item's start is not a number"))
        items.append(
            ActionItem(
                text=str(_text(raw.get("text"), _NO_ITEM_TEXT))[:500],
                owner=_text(raw.get("owner"), _NO_OWNER, optional=True),
                due=_text(raw.get("due"), _NO_DUE, optional=True),
                start=max(float(start), 0.0) if start is not None else None,
            )
        )
    return items


def analyse(data: AnalysisInput, config: LlmConfig) -> LlmAnswer:
    """Summary, topics and action items from the LLM; raises ``LlmError`` on any failure."""
    lines = transcript_lines(sorted(data.utterances, key=lambda u: u.start))
    if not lines:
        return LlmAnswer(summary="", topics=[], action_items=[], requests=0)
    write_in = language_instruction(transcript_language(data.utterances, data.language))
    system = f"{SYSTEM_PROMPT} {write_in}"
    # The system prompt and the names line share the cap with the transcript.
    names = ", ".join(data.known_names)[:500]
    budget = max(config.max_prompt_chars - len(system) - len(names) - 40, 200)
    client = LlmClient(config)
    try:
        parts = []
        for chunk in chunk_lines(lines, budget):
            answer = client.ask(system, f"Participants: {names}\n\n{chunk}")
            parts.append(
                (
                    _text(answer.get("summary"), _NO_SUMMARY),
                    _topics(answer.get("topics")),
                    _action_items(answer.get("action_items")),
                )
            )
        items = [item for _, _, chunk_items in parts for item in chunk_items]
        if len(parts) == 1:
            summary, topics, _ = parts[0]
        else:
            summary, topics = _combine(client, parts, config.max_prompt_chars, write_in)
        return LlmAnswer(
            summary=str(summary), topics=topics, action_items=items, requests=client.requests
        )
    finally:
        client.close()


def _combine(
    client: LlmClient,
    parts: list[tuple[str | None, list[str], list[ActionItem]]],
    cap: int,
    write_in: str,
) -> tuple[str, list[str]]:
    system = f"{COMBINE_PROMPT} {write_in}"
    notes = [
        f"Part {i}: {summary}\nTopics: {', '.join(topics)}"
        for i, (summary, topics, _) in enumerate(parts, start=1)
    ]
    text = "\n\n".join(notes)[: max(cap - len(system), 200)]
    answer = client.ask(system, text)
    return str(_text(answer.get("summary"), _NO_SUMMARY)), _topics(answer.get("topics"))
