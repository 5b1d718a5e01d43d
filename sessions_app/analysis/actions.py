"""Rule-based action items: who committed to what, and by when.

Recognised forms (case-insensitive, after fillers like "okay, so"):

* ``I will / I'll / I'm going to / I can take <task>`` — owned by the speaker;
* ``<Name> will / <Name> is going to <task>`` — owned by that participant or member;
* ``<Name>, can you / could you / please <task>`` — owned by ``<Name>``;
* ``we need to / we should / we'll / let's <task>`` — the team's (no owner), but not the
  meeting's own talk (``let's look at what went well``);
* ``action item: <task>`` (``<Name> to <task>`` inside names the owner).

Due phrases such as "by Friday", "tomorrow", "next week", "by the end of the month" and
"on March 3" are kept as said.

What follows the frame must be a verb and its object (``grammar.py``): a misrecognised
fragment such as "we will then direct the other white" is not an action item.

Sentences in Russian go through the Russian rules instead (``actions_ru.py``); items of both
read alike. The sentence's alphabet tells which: the two do not overlap, and a recogniser labels
a whole segment with one language even when a speaker switched within it.
"""

from __future__ import annotations

import re

from sessions_app.analysis import actions_ru
from sessions_app.analysis.grammar import has_verb_and_object
from sessions_app.analysis.names import NameBook
from sessions_app.analysis.text import STOPWORDS, Sentence, is_cyrillic
from sessions_app.analysis.types import ActionItem

_DAYS = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_MONTHS = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
)
_PERIOD = r"(?:day|week|month|quarter|year|sprint)"
_COUNT = r"(?:a|an|one|two|three|four|five|six|\d+)"
_DUE_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        rf"\b(?:by|before|until) (?:the )?end of (?:the |this |next )?{_PERIOD}\b",
        rf"\b(?:by |on |before )?(?:the )?end of (?:the |this |next )?{_PERIOD}\b",
        rf"\b(?:by|on|before|until) (?:next |this )?{_DAYS}(?: morning| afternoon| evening)?\b",
        rf"\b(?:by|on|before|until) {_MONTHS}\.? \d{{1,2}}(?:st|nd|rd|th)?\b",
        rf"\b(?:by|on|before|until) (?:the )?\d{{1,2}}(?:st|nd|rd|th)?(?: of)? {_MONTHS}\b",
        rf"\b(?:by |before )?(?:next|this) (?:week|month|quarter|year|{_DAYS})\b",
        r"\b(?:by |before )?tomorrow(?: morning| afternoon| evening| night)?\b",
        r"\b(?:by |before )?(?:today|tonight|this afternoon|this evening|eod|eow)\b",
        rf"\bwithin (?:the next )?{_COUNT} (?:hours?|days?|weeks?|months?)\b",
        rf"\bin (?:the next )?{_COUNT} (?:days?|weeks?|months?)\b",
        r"\bbefore (?:the |our )?next (?:meeting|call|sync|session|standup|review)\b",
        rf"\b{_DAYS}\b",
    )
]

_FILLERS = re.compile(
    r"^(?:(?:ok(?:ay)?|so|and|alright|all right|right|well|yeah|yes|sure|also|then|um+|uh+|"
    r"great|good|cool|fine|perfect|sounds good|got it)\b[\s,.!-]*)+",
    re.IGNORECASE,
)
_NAME = r"(?P<name>[A-Za-z][\w'-]*(?: [A-Z][\w'-]*)?)"
_SELF = re.compile(
    r"^i(?:'ll| will| am going to|'m going to|'m gonna|(?P<take> can take| will take)| shall)\s+"
    r"(?:also\s+|then\s+|just\s+|definitely\s+)?(?P<rest>.+)",
    re.IGNORECASE,
)
_TEAM = re.compile(
    r"^(?:we need to|we have to|we should|we must|we'll need to|we will need to|"
    r"(?P<lets>let's|let us)|we'll|we will|we're going to|we are going to)"
    r"\s+(?P<rest>.+)",
    re.IGNORECASE,
)
_NAMED_WILL = re.compile(
    rf"^{_NAME}(?:'ll| will| is going to| is gonna|(?P<take> can take)| agreed to)\s+(?P<rest>.+)"
)
_NAMED_ASK = re.compile(
    rf"\b{_NAME}\s*,\s*(?:can|could|would|will) you(?: please)?\s+(?P<rest>.+)"
    rf"|\b{_NAME.replace('name', 'name2')}\s*,\s*please\s+(?P<rest2>.+)"
)
_ACTION_LABEL = re.compile(r"^action items?\s*[:\-\u2013]?\s*(?P<rest>.+)", re.IGNORECASE)
_LABEL_OWNER = re.compile(rf"^{_NAME}\s+(?:to|will|should|needs to)\s+(?=\S)")
_CLAUSE_SPLIT = re.compile(r"[,;:]\s+|\s+(?:and then|so|and)\s+(?=i\b|i'll|we\b|let's)", re.I)

# Things people say with "I'll" / "let's" that are not commitments.
_NOT_TASKS = re.compile(
    r"^(?:be\b|say\b|tell you|admit|just say|be honest|see you|talk to you|leave it|"
    r"pass\b|stop there|start\b|get started|begin\b|move on|go\b(?! ahead and)|wrap|see\b|hear\b|"
    r"talk about|think\b|try to remember|take a look at the agenda|keep it short|"
    r"welcome|recap|dive in|kick off|jump in|share my screen|share the screen|stop sharing|"
    r"show you|walk you through|hand (?:it )?over|turn it over|mute|unmute|drop off|"
    r"have to (?:drop|leave|run)|leave now|be right back|be back)",
    re.IGNORECASE,
)
# "Let's look at what went well", "let's talk about how it went": the meeting reviewing itself.
_MEETING_TALK = re.compile(
    r"^(?:look|talk|think|go|reflect|review|discuss|recap|consider|see)\b"
    r"(?:\s+(?:at|about|over|through|back|on|into))*\s+(?:what|how|why|where|when|whether|who)\b",
    re.IGNORECASE,
)


def due_phrase(text: str) -> str | None:
    for pattern in _DUE_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(0)
    return None


def _is_task(rest: str, *, verb_given: bool = False) -> bool:
    """Whether ``rest`` (what follows the frame) is something to do: a verb and its object,
    and none of the things people say that are not commitments."""
    rest = rest.strip()
    if _NOT_TASKS.match(rest):
        return False
    due = due_phrase(rest)
    return has_verb_and_object(rest.replace(due, " ") if due else rest, verb_given=verb_given)


def _strip_fillers(text: str) -> str:
    return _FILLERS.sub("", text.strip()).strip()


def _clause_owner(clause: str, speaker: str | None, names: NameBook) -> tuple[bool, str | None]:
    """Whether ``clause`` is a commitment, and its owner."""
    clause = _strip_fillers(clause)
    label = _ACTION_LABEL.match(clause)
    if label:
        rest = label.group("rest")
        owner_match = _LABEL_OWNER.match(rest)
        owner = names.resolve(owner_match.group("name")) if owner_match else None
        # "Carol to book the venue": the task follows the owner (unless "Carol" was the verb).
        task = rest[owner_match.end() :] if owner_match else rest
        return (_is_task(task) or _is_task(rest)), owner
    match = _SELF.match(clause)
    if match:
        verb_given = match.group("take") is not None
        if clause.endswith("?") or not _is_task(match.group("rest"), verb_given=verb_given):
            return False, None
        return True, speaker
    match = _TEAM.match(clause)
    if match:
        rest = match.group("rest")
        if match.group("lets") and _MEETING_TALK.match(rest):
            return False, None
        return (_is_task(rest) and not clause.endswith("?")), None
    match = _NAMED_WILL.match(clause)
    verb_given = match is not None and match.group("take") is not None
    if match and _is_task(match.group("rest"), verb_given=verb_given) and not clause.endswith("?"):
        owner = names.resolve(match.group("name"))
        if owner is not None:
            return True, owner
    return False, None


def _asked_owner(text: str, names: NameBook) -> str | bool | None:
    """``<Name>, can you …`` anywhere in ``text``: the owner; False when there is no request."""
    match = _NAMED_ASK.search(text)
    if not match:
        return False
    said = match.group("name") or match.group("name2")
    rest = match.group("rest") or match.group("rest2") or ""
    if not _is_task(rest):
        return False
    owner = names.resolve(said)
    if owner is None:
        word = said.split(" ")[0]
        # An unknown but capitalised word before "can you" is still a name ("Dana, can you").
        if not word[:1].isupper() or word.lower() in STOPWORDS:
            return False
        owner = said
    return owner


def _find(text: str, speaker: str | None, names: NameBook) -> tuple[bool, str | None]:
    """Whether the sentence ``text`` holds a commitment, and its owner (None: the team's)."""
    asked = _asked_owner(text, names)
    if asked is not False:
        return True, asked if isinstance(asked, str) else None
    for clause in [text, *_CLAUSE_SPLIT.split(text)[1:]]:
        found, owner = _clause_owner(clause, speaker, names)
        if found:
            return True, owner
    return False, None


def extract_action_items(sentences: list[Sentence], *, known_names: list[str]) -> list[ActionItem]:
    speaker_names = [s.utterance.speaker_name for s in sentences if s.utterance.speaker_name]
    names = NameBook([*known_names, *speaker_names])
    items: list[ActionItem] = []
    seen: set[str] = set()
    for sentence in sentences:
        speaker = names.resolve(sentence.utterance.speaker_name) or (
            sentence.utterance.speaker_name or None
        )
        if is_cyrillic(sentence.text):
            found, owner = actions_ru.find(sentence.text, speaker, names)
            strip, due = actions_ru.strip_fillers, actions_ru.due_phrase(sentence.text)
        else:
            found, owner = _find(sentence.text, speaker, names)
            strip, due = _strip_fillers, due_phrase(sentence.text)
        if not found:
            continue
        text = strip(sentence.text) or sentence.text.strip()
        text = text[0].upper() + text[1:] if text else text
        key = re.sub(r"\W+", " ", text.lower()).strip()
        if key in seen:
            continue
        seen.add(key)
        items.append(
            ActionItem(
                text=text[:500],
                owner=owner,
                due=due,
                start=round(sentence.start, 1),
            )
        )
    return items
