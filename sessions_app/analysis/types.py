"""What every analysis provider takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NotRequired, TypedDict


@dataclass(frozen=True, slots=True)
class Utterance:
    """One final transcript segment: who said what, in seconds since the session started."""

    speaker_identity: str
    speaker_name: str
    text: str
    start: float
    end: float
    # The recogniser's confidence in the text, 0 to 1; None when the engine gives none.
    confidence: float | None = None
    # The language the engine heard (ISO 639-1, as stored on the segment); "" when it did not
    # say (``text.segment_language`` then works it out).
    language: str = ""


class ActionItem(TypedDict):
    text: str
    owner: str | None
    due: str | None
    start: float | None
    # Said in speech the recogniser was unsure of (set by ``confidence.mark_low_confidence``).
    low_confidence: NotRequired[bool]


class SpeakerStat(TypedDict):
    identity: str
    name: str
    talk_seconds: float
    words: int
    wpm: int
    turns: int


@dataclass(slots=True)
class AnalysisResult:
    provider: str
    summary: str
    topics: list[str]
    action_items: list[ActionItem]
    speaker_stats: list[SpeakerStat] = field(default_factory=list)
    # Set when the configured provider failed and another one answered (kept on the row).
    note: str = ""


@dataclass(frozen=True, slots=True)
class AnalysisInput:
    utterances: list[Utterance]
    # Names that may own an action item: participants and space members (display names).
    known_names: list[str]
    # The session's language when it was fixed to exactly one (ISO 639-1), else "": the
    # language of segments that stored none and whose alphabet does not tell.
    language: str = ""
    # How the speaker stats name speech from nobody in particular (the room's microphone):
    # ``sessions_app.analysis.analyse`` gives it in the meeting's language.
    room_name: str = "Room"
