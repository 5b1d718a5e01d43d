"""A session's transcript as files: TXT, SRT, WebVTT, JSON and Markdown.

Pure functions from cues (stored finals: offsets in seconds since the session started, a
speaker label, text) to text. SRT and WebVTT get one cue per final; TXT and Markdown read like
a script, one paragraph per speaker turn (consecutive finals of the same speaker merged).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

UNKNOWN_SPEAKER = "Room"
_WHITESPACE = re.compile(r"\s+")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#&])")


@dataclass(frozen=True, slots=True)
class Cue:
    start: float
    end: float
    speaker: str
    speaker_identity: str
    text: str
    language: str = ""
    confidence: float | None = None
    """The engine's confidence in the recognised text (0 to 1), None when it gave none."""
    words: list[dict[str, Any]] | None = None
    """Recognised words with their times and confidences; None once people corrected it."""
    revision: int = 0
    """How many times people corrected this segment (text or speaker)."""


@dataclass(frozen=True, slots=True)
class Turn:
    """Consecutive cues of one speaker."""

    speaker: str
    speaker_identity: str
    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class TranscriptMeta:
    slug: str
    title: str
    space: str
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class ExportFormat:
    extension: str
    content_type: str
    render: Callable[[list[Cue], TranscriptMeta], str]


def speaker_label(name: str | None) -> str:
    """The name shown for a speaker: the participant's name, "Room" when nobody was attributed."""
    name = (name or "").strip()
    return name or UNKNOWN_SPEAKER


def one_line(text: str) -> str:
    """Text with every run of whitespace (newlines included) folded into one space."""
    return _WHITESPACE.sub(" ", text).strip()


def cue_from_row(
    start: float,
    end: float,
    speaker_name: str,
    speaker_identity: str,
    text: str,
    language: str,
    confidence: float | None = None,
    words: list[dict[str, Any]] | None = None,
    revision: int = 0,
) -> Cue | None:
    """A cue from a stored final's columns; None for a final with no words."""
    text = one_line(text)
    if not text:
        return None
    return Cue(
        start=max(0.0, start),
        end=max(0.0, end),
        speaker=speaker_label(speaker_name),
        speaker_identity=speaker_identity,
        text=text,
        language=language,
        confidence=confidence,
        words=words,
        revision=revision,
    )


def group_turns(cues: Iterable[Cue]) -> list[Turn]:
    """Merge consecutive cues of the same speaker (same identity, or same label without one)."""
    turns: list[Turn] = []
    texts: list[str] = []
    current: Cue | None = None
    end = 0.0
    for cue in cues:
        if current is not None and _speaker_key(cue) == _speaker_key(current):
            texts.append(cue.text)
            end = max(end, cue.end)
            continue
        if current is not None:
            turns.append(_turn(current, end, texts))
        current, end, texts = cue, cue.end, [cue.text]
    if current is not None:
        turns.append(_turn(current, end, texts))
    return turns


def _speaker_key(cue: Cue) -> tuple[str, str]:
    return (cue.speaker_identity, "" if cue.speaker_identity else cue.speaker)


def _turn(first: Cue, end: float, texts: list[str]) -> Turn:
    return Turn(
        speaker=first.speaker,
        speaker_identity=first.speaker_identity,
        start=first.start,
        end=end,
        text=" ".join(texts),
    )


# --- timestamps -------------------------------------------------------------------------------


def _split_ms(milliseconds: int) -> tuple[int, int, int, int]:
    seconds, ms = divmod(milliseconds, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return hours, minutes, seconds, ms


def _cue_ms(cue: Cue) -> tuple[int, int]:
    """Start and end in milliseconds; a cue always lasts at least 1 ms (WebVTT requires end >
    start)."""
    start = round(cue.start * 1000)
    return start, max(round(cue.end * 1000), start + 1)


def srt_time(milliseconds: int) -> str:
    h, m, s, ms = _split_ms(milliseconds)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def vtt_time(milliseconds: int) -> str:
    h, m, s, ms = _split_ms(milliseconds)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def clock(seconds: float) -> str:
    """``H:MM:SS`` (hours always shown), the whole seconds of an offset."""
    h, m, s, _ = _split_ms(int(max(0.0, seconds)) * 1000)
    return f"{h:d}:{m:02d}:{s:02d}"


# --- formats ----------------------------------------------------------------------------------


def to_srt(cues: list[Cue], meta: TranscriptMeta | None = None) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm`` times, "Speaker: text" on one line.

    The text is one line (a blank line would end the cue) and ``-->`` becomes "→" so no text
    line can be read as a timing line.
    """
    blocks = []
    for number, cue in enumerate(cues, start=1):
        start, end = _cue_ms(cue)
        text = f"{cue.speaker}: {cue.text}".replace("-->", "→")
        blocks.append(f"{number}\n{srt_time(start)} --> {srt_time(end)}\n{text}\n\n")
    return "".join(blocks)


def _vtt_escape(text: str) -> str:
    # Cue text is markup: "&" and "<" start entities and tags; escaping ">" also turns every
    # "-->" into "--&gt;", which WebVTT forbids inside a cue.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(cues: list[Cue], meta: TranscriptMeta | None = None) -> str:
    """WebVTT: ``HH:MM:SS.mmm`` times and the speaker as a voice span ``<v Name>``."""
    parts = ["WEBVTT\n\n"]
    for cue in cues:
        start, end = _cue_ms(cue)
        parts.append(
            f"{vtt_time(start)} --> {vtt_time(end)}\n"
            f"<v {_vtt_escape(cue.speaker)}>{_vtt_escape(cue.text)}\n\n"
        )
    return "".join(parts)


def to_txt(cues: list[Cue], meta: TranscriptMeta) -> str:
    """Plain text: a heading, then one paragraph per speaker turn: ``[H:MM:SS] Name: text``."""
    lines = [meta.title, _dates_line(meta), ""]
    if not cues:
        lines.append("(No transcript was recorded.)")
    for turn in group_turns(cues):
        lines += [f"[{clock(turn.start)}] {turn.speaker}: {turn.text}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown_escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def to_markdown(cues: list[Cue], meta: TranscriptMeta) -> str:
    """Markdown: a title, the dates, then one paragraph per speaker turn."""
    lines = [
        f"# {_markdown_escape(meta.title)}",
        "",
        f"- Space: {_markdown_escape(meta.space)}",
        f"- Session: `{meta.slug}`",
    ]
    if meta.started_at is not None:
        lines.append(f"- Started: {_datetime(meta.started_at)}")
    if meta.ended_at is not None:
        lines.append(f"- Ended: {_datetime(meta.ended_at)}")
    lines += ["", "## Transcript", ""]
    if not cues:
        lines += ["_No transcript was recorded._", ""]
    for turn in group_turns(cues):
        speaker = _markdown_escape(turn.speaker)
        lines += [f"**[{clock(turn.start)}] {speaker}:** {_markdown_escape(turn.text)}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def to_json(cues: list[Cue], meta: TranscriptMeta) -> str:
    """``{"version": 1, "session": {...}, "segments": [{start, end, speaker, ...}]}``."""
    document: dict[str, Any] = {
        "version": 1,
        "session": {
            "slug": meta.slug,
            "title": meta.title,
            "space": meta.space,
            "started_at": meta.started_at.isoformat() if meta.started_at else None,
            "ended_at": meta.ended_at.isoformat() if meta.ended_at else None,
        },
        "segments": [
            {
                "start": round(cue.start, 3),
                "end": round(cue.end, 3),
                "speaker": cue.speaker,
                "speaker_identity": cue.speaker_identity or None,
                "text": cue.text,
                "language": cue.language,
                "confidence": cue.confidence,
                "edited": cue.revision > 0,
                **({"words": cue.words} if cue.words else {}),
            }
            for cue in cues
        ],
    }
    # Compact: the json module's C encoder only serves output without indentation.
    return json.dumps(document, ensure_ascii=False) + "\n"


def _datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M %Z").strip()


def _dates_line(meta: TranscriptMeta) -> str:
    parts = [meta.space]
    if meta.started_at is not None:
        parts.append(f"started {_datetime(meta.started_at)}")
    if meta.ended_at is not None:
        parts.append(f"ended {_datetime(meta.ended_at)}")
    return " · ".join(parts)


FORMATS: dict[str, ExportFormat] = {
    "txt": ExportFormat("txt", "text/plain; charset=utf-8", to_txt),
    "srt": ExportFormat("srt", "application/x-subrip; charset=utf-8", to_srt),
    "vtt": ExportFormat("vtt", "text/vtt; charset=utf-8", to_vtt),
    "json": ExportFormat("json", "application/json; charset=utf-8", to_json),
    "md": ExportFormat("md", "text/markdown; charset=utf-8", to_markdown),
}
