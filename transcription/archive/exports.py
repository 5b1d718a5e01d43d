"""A session's transcript as files: TXT, SRT, WebVTT, JSON and Markdown.

Pure functions from cues (stored finals: offsets in seconds since the session started, a
speaker label, text) to text. SRT and WebVTT get one cue per final; TXT and Markdown read like
a script, one paragraph per speaker turn (consecutive finals of the same speaker merged).

The words people read (headings, dates, "Room" for speech attributed to nobody) are in the
active language, so a download comes in its requester's language; the JSON document's keys and
values stay machine-readable (ISO dates, language codes). Where the transcript is in more than
one language, every cue of the text formats starts with its language (``[ru] …``) and a turn
ends where the language changes; the JSON export always gives each segment's own language.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_noop as noop

# The label of speech attributed to nobody, as stored and in English; unknown_speaker() is the
# label in the active language.
UNKNOWN_SPEAKER = noop("Room")
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
    """Consecutive cues of one speaker (and one language, when languages are shown)."""

    speaker: str
    speaker_identity: str
    start: float
    end: float
    text: str
    language: str = ""


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


def unknown_speaker() -> str:
    """The label of speech attributed to nobody, in the active language ("Room")."""
    return gettext(UNKNOWN_SPEAKER)


def speaker_label(name: str | None) -> str:
    """The name shown for a speaker: the participant's name, "Room" when nobody was attributed."""
    name = (name or "").strip()
    return name or unknown_speaker()


def shows_languages(cues: Iterable[Cue]) -> bool:
    """Whether the transcript is in more than one language (finals that name different
    languages): then each cue of the text formats is labelled with its own."""
    return len({cue.language for cue in cues if cue.language}) > 1


def language_tag(language: str) -> str:
    """``[ru]`` before a cue's text; nothing for a cue whose language is unknown."""
    return f"[{language}] " if language else ""


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


def group_turns(cues: Iterable[Cue], *, by_language: bool = False) -> list[Turn]:
    """Merge consecutive cues of the same speaker (same identity, or same label without one);
    ``by_language``: and of the same language, so that each turn is in one language."""
    turns: list[Turn] = []
    texts: list[str] = []
    current: Cue | None = None
    end = 0.0
    for cue in cues:
        if current is not None and _turn_key(cue, by_language) == _turn_key(current, by_language):
            texts.append(cue.text)
            end = max(end, cue.end)
            continue
        if current is not None:
            turns.append(_turn(current, end, texts))
        current, end, texts = cue, cue.end, [cue.text]
    if current is not None:
        turns.append(_turn(current, end, texts))
    return turns


def _turn_key(cue: Cue, by_language: bool) -> tuple[str, str, str]:
    speaker = "" if cue.speaker_identity else cue.speaker
    return (cue.speaker_identity, speaker, cue.language if by_language else "")


def _turn(first: Cue, end: float, texts: list[str]) -> Turn:
    return Turn(
        speaker=first.speaker,
        speaker_identity=first.speaker_identity,
        start=first.start,
        end=end,
        text=" ".join(texts),
        language=first.language,
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
    """SubRip: numbered cues, ``HH:MM:SS,mmm`` times, "Speaker: text" on one line
    ("Speaker: [ru] text" in a transcript of several languages).

    The text is one line (a blank line would end the cue) and ``-->`` becomes "→" so no text
    line can be read as a timing line.
    """
    labelled = shows_languages(cues)
    blocks = []
    for number, cue in enumerate(cues, start=1):
        start, end = _cue_ms(cue)
        tag = language_tag(cue.language) if labelled else ""
        text = f"{cue.speaker}: {tag}{cue.text}".replace("-->", "→")
        blocks.append(f"{number}\n{srt_time(start)} --> {srt_time(end)}\n{text}\n\n")
    return "".join(blocks)


def _vtt_escape(text: str) -> str:
    # Cue text is markup: "&" and "<" start entities and tags; escaping ">" also turns every
    # "-->" into "--&gt;", which WebVTT forbids inside a cue.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(cues: list[Cue], meta: TranscriptMeta | None = None) -> str:
    """WebVTT: ``HH:MM:SS.mmm`` times and the speaker as a voice span ``<v Name>`` (then
    ``[ru]`` before the text in a transcript of several languages)."""
    labelled = shows_languages(cues)
    parts = ["WEBVTT\n\n"]
    for cue in cues:
        start, end = _cue_ms(cue)
        text = (language_tag(cue.language) if labelled else "") + cue.text
        parts.append(
            f"{vtt_time(start)} --> {vtt_time(end)}\n"
            f"<v {_vtt_escape(cue.speaker)}>{_vtt_escape(text)}\n\n"
        )
    return "".join(parts)


def to_txt(cues: list[Cue], meta: TranscriptMeta) -> str:
    """Plain text: a heading, then one paragraph per speaker turn: ``[H:MM:SS] Name: text``
    (``[H:MM:SS] Name: [ru] text`` in a transcript of several languages)."""
    labelled = shows_languages(cues)
    lines = [meta.title, _dates_line(meta), ""]
    if not cues:
        lines.append(gettext("(No transcript was recorded.)"))
    for turn in group_turns(cues, by_language=labelled):
        tag = language_tag(turn.language) if labelled else ""
        lines += [f"[{clock(turn.start)}] {turn.speaker}: {tag}{turn.text}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown_escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def to_markdown(cues: list[Cue], meta: TranscriptMeta) -> str:
    """Markdown: a title, the dates, then one paragraph per speaker turn (its text after
    ``[ru]`` in a transcript of several languages)."""
    labelled = shows_languages(cues)
    lines = [
        f"# {_markdown_escape(meta.title)}",
        "",
        "- " + gettext("Space: %(space)s") % {"space": _markdown_escape(meta.space)},
        "- " + gettext("Session: %(session)s") % {"session": f"`{meta.slug}`"},
    ]
    if meta.started_at is not None:
        lines.append("- " + gettext("Started: %(time)s") % {"time": _datetime(meta.started_at)})
    if meta.ended_at is not None:
        lines.append("- " + gettext("Ended: %(time)s") % {"time": _datetime(meta.ended_at)})
    lines += ["", "## " + gettext("Transcript"), ""]
    if not cues:
        lines += ["_" + gettext("No transcript was recorded.") + "_", ""]
    for turn in group_turns(cues, by_language=labelled):
        speaker = _markdown_escape(turn.speaker)
        text = _markdown_escape((language_tag(turn.language) if labelled else "") + turn.text)
        lines += [f"**[{clock(turn.start)}] {speaker}:** {text}", ""]
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
    """A date and time as the active language writes them, in the current time zone, named."""
    local = timezone.localtime(value)
    return f"{formats.date_format(local, 'DATETIME_FORMAT')} {local.tzname() or ''}".strip()


def _dates_line(meta: TranscriptMeta) -> str:
    parts = [meta.space]
    if meta.started_at is not None:
        parts.append(gettext("started %(time)s") % {"time": _datetime(meta.started_at)})
    if meta.ended_at is not None:
        parts.append(gettext("ended %(time)s") % {"time": _datetime(meta.ended_at)})
    return " · ".join(parts)


FORMATS: dict[str, ExportFormat] = {
    "txt": ExportFormat("txt", "text/plain; charset=utf-8", to_txt),
    "srt": ExportFormat("srt", "application/x-subrip; charset=utf-8", to_srt),
    "vtt": ExportFormat("vtt", "text/vtt; charset=utf-8", to_vtt),
    "json": ExportFormat("json", "application/json; charset=utf-8", to_json),
    "md": ExportFormat("md", "text/markdown; charset=utf-8", to_markdown),
}
