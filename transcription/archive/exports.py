"""A session's transcript as files: TXT, SRT, WebVTT, JSON and Markdown.

Pure functions from cues (stored finals: offsets in seconds since the session started, a
speaker label, text) to text. SRT and WebVTT get one cue per final; TXT and Markdown read like
a script, one paragraph per speaker turn (consecutive finals of the same speaker merged).

The words people read (headings, dates, "Room" for speech attributed to nobody) are in the
active language, so a download comes in its requester's language; the JSON document's keys and
values stay machine-readable (ISO dates, language codes). Where the transcript is in more than
one language, every cue of the text formats starts with its language (``[ru] …``) and a turn
ends where the language changes; the JSON export always gives each segment's own language.

An export in a caption language (``TranscriptMeta.language``) gives each final's translation
into it where one is stored, and the original where none is: then every cue is labelled with
its language, so a line as spoken is never taken for a translation, and TXT, Markdown and
WebVTT say so in their heading. The JSON export gives each segment's original beside it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.utils import formats, timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_noop as noop

from spaces.languages import language_label

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
    original: str | None = None
    """The text as spoken when ``text`` is a translation (into ``language``); else None."""
    original_language: str = ""
    stale: bool = False
    """A translation made before the original's last correction."""


def translated_cue(cue: Cue, *, text: str, language: str, stale: bool) -> Cue:
    """``cue`` showing its translation into ``language``."""
    return replace(
        cue,
        text=one_line(text),
        language=language,
        original=cue.text,
        original_language=cue.language,
        stale=stale,
        words=None,
        confidence=None,
    )


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
    language: str = ""
    """The caption language the export is in; "" for the transcript as spoken."""


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


def shows_languages(cues: Iterable[Cue], meta: TranscriptMeta | None = None) -> bool:
    """Whether each cue of the text formats is labelled with its language: the transcript is
    in more than one (finals that name different languages), or it is an export in a caption
    language with some finals as spoken."""
    cues = list(cues)
    if meta is not None and any(_as_spoken(cue, meta) for cue in cues):
        return True
    return len({cue.language for cue in cues if cue.language}) > 1


def _as_spoken(cue: Cue, meta: TranscriptMeta) -> bool:
    """In an export in a caption language: a final shown as spoken in another language."""
    return bool(meta.language) and cue.original is None and cue.language != meta.language


def language_tag(language: str) -> str:
    """``[ru]`` before a cue's text; nothing for a cue whose language is unknown."""
    return f"[{language}] " if language else ""


def cue_tag(language: str, meta: TranscriptMeta | None) -> str:
    """The label of a cue or turn in ``language``: ``[ru]``; in an export in a caption
    language, speech in an unknown language (never a translation) is labelled "original"."""
    if not language and meta is not None and meta.language:
        return f"[{gettext('original')}] "
    return language_tag(language)


def translation_note(cues: list[Cue], meta: TranscriptMeta) -> str:
    """What the heading of an export in a caption language says about it; "" for one as
    spoken."""
    if not meta.language:
        return ""
    name = language_label(meta.language)
    untranslated = sum(_as_spoken(cue, meta) for cue in cues)
    stale = sum(cue.stale for cue in cues)
    parts = [gettext("Translated into %(language)s.") % {"language": name}]
    if untranslated:
        parts.append(
            ngettext(
                "%(count)s line has no translation and is as spoken, marked with its language.",
                "%(count)s lines have no translation and are as spoken, marked with their "
                "language.",
                untranslated,
            )
            % {"count": untranslated}
        )
    if stale:
        parts.append(
            ngettext(
                "%(count)s translation is older than a correction of its original.",
                "%(count)s translations are older than a correction of their original.",
                stale,
            )
            % {"count": stale}
        )
    return " ".join(parts)


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
    labelled = shows_languages(cues, meta)
    blocks = []
    for number, cue in enumerate(cues, start=1):
        start, end = _cue_ms(cue)
        tag = cue_tag(cue.language, meta) if labelled else ""
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
    labelled = shows_languages(cues, meta)
    parts = ["WEBVTT\n\n"]
    note = translation_note(cues, meta) if meta is not None else ""
    if note:
        # A comment block: players skip it. "-->" cannot occur in it.
        parts.append(f"NOTE\n{note.replace('-->', '→')}\n\n")
    for cue in cues:
        start, end = _cue_ms(cue)
        text = (cue_tag(cue.language, meta) if labelled else "") + cue.text
        parts.append(
            f"{vtt_time(start)} --> {vtt_time(end)}\n"
            f"<v {_vtt_escape(cue.speaker)}>{_vtt_escape(text)}\n\n"
        )
    return "".join(parts)


def to_txt(cues: list[Cue], meta: TranscriptMeta) -> str:
    """Plain text: a heading, then one paragraph per speaker turn: ``[H:MM:SS] Name: text``
    (``[H:MM:SS] Name: [ru] text`` in a transcript of several languages)."""
    labelled = shows_languages(cues, meta)
    lines = [meta.title, _dates_line(meta), ""]
    if note := translation_note(cues, meta):
        lines += [note, ""]
    if not cues:
        lines.append(gettext("(No transcript was recorded.)"))
    for turn in group_turns(cues, by_language=labelled):
        tag = cue_tag(turn.language, meta) if labelled else ""
        lines += [f"[{clock(turn.start)}] {turn.speaker}: {tag}{turn.text}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown_escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def to_markdown(cues: list[Cue], meta: TranscriptMeta) -> str:
    """Markdown: a title, the dates, then one paragraph per speaker turn (its text after
    ``[ru]`` in a transcript of several languages)."""
    labelled = shows_languages(cues, meta)
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
    if note := translation_note(cues, meta):
        lines += ["", _markdown_escape(note)]
    lines += ["", "## " + gettext("Transcript"), ""]
    if not cues:
        lines += ["_" + gettext("No transcript was recorded.") + "_", ""]
    for turn in group_turns(cues, by_language=labelled):
        speaker = _markdown_escape(turn.speaker)
        text = _markdown_escape((cue_tag(turn.language, meta) if labelled else "") + turn.text)
        lines += [f"**[{clock(turn.start)}] {speaker}:** {text}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _json_translation(cue: Cue) -> dict[str, Any]:
    """What an export in a caption language adds to a segment: its original (null when its
    text is as spoken) and whether its translation is stale."""
    if cue.original is None:
        return {"original": None, "stale": False}
    return {
        "original": {"text": cue.original, "language": cue.original_language},
        "stale": cue.stale,
    }


def to_json(cues: list[Cue], meta: TranscriptMeta) -> str:
    """``{"version": 1, "session": {...}, "segments": [{start, end, speaker, ...}]}``; in a
    caption language, ``session.language`` and each segment's ``original`` and ``stale``."""
    document: dict[str, Any] = {
        "version": 1,
        "session": {
            "slug": meta.slug,
            "title": meta.title,
            "space": meta.space,
            "started_at": meta.started_at.isoformat() if meta.started_at else None,
            "ended_at": meta.ended_at.isoformat() if meta.ended_at else None,
            **({"language": meta.language} if meta.language else {}),
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
                **(_json_translation(cue) if meta.language else {}),
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
