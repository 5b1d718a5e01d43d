"""Gladia Live v2's messages, as data: the init request and the events its messages become.

Pure functions (no sockets, no state) for ``gladia.py``; the shapes are documented, with their
sources, in ``docs/gladia-translation.md`` and ``/work/shared/FACTS.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import SttEvent, SttTranslation

_TRANSLATION_CODES = """
af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi
hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn
no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi
wo yi yo zh
"""
TRANSLATION_LANGUAGES = frozenset(_TRANSLATION_CODES.split())
"""The codes Gladia translates into (its SDK's ``LiveV2TranslationLanguageCode``)."""


def init_body(
    *, sample_rate: int, languages: Sequence[str], targets: frozenset[str], translation_model: str
) -> dict[str, Any]:
    """The ``POST /v2/live`` body: PCM16 mono, the expected ``languages`` (empty: detect), and
    real-time translation into ``targets`` when there are any (else exactly as without it)."""
    body: dict[str, Any] = {
        "encoding": "wav/pcm",
        "bit_depth": 16,
        "sample_rate": sample_rate,
        "channels": 1,
        "language_config": {
            "languages": list(languages),
            "code_switching": len(languages) != 1,
        },
        "messages_config": {
            "receive_partial_transcripts": True,
            "receive_final_transcripts": True,
            # Acks tell which audio the server holds; without them a dropped
            # socket would silently lose whatever was in flight.
            "receive_acknowledgments": True,
        },
    }
    if targets:
        body["realtime_processing"] = {
            "translation": True,
            "translation_config": {
                "target_languages": sorted(targets),
                "model": translation_model,
                "match_original_utterances": True,  # one translation per segment
                "lipsync": False,  # it may merge words; captions are text
            },
        }
        body["messages_config"]["receive_realtime_processing_events"] = True
    return body


def transcript_event(
    data: dict[str, Any], *, session_id: str, offset: float, languages: Sequence[str]
) -> SttEvent | None:
    """A ``transcript`` message's ``data`` as an event (None: no text). ``offset``: stream
    seconds of the Gladia session's time 0."""
    utterance = data["utterance"]
    text = str(utterance.get("text") or "").strip()
    if not text:
        return None
    # The language Gladia heard; without one, only a session fixed to one language knows
    # it (with several or none, guessing the first would label the segment wrongly).
    fixed = languages[0] if len(languages) == 1 else ""
    return SttEvent(
        utterance_id=f"{session_id}:{data['id']}",
        text=text,
        is_final=bool(data.get("is_final")),
        start=round(offset + float(utterance["start"]), 3),
        end=round(offset + float(utterance["end"]), 3),
        language=str(utterance.get("language") or fixed),
    )


def translation_event(
    data: dict[str, Any], *, session_id: str, offset: float
) -> SttTranslation | None:
    """A ``translation`` message's ``data`` as an event keyed like its final (None: no text)."""
    translated = data["translated_utterance"]
    text = str(translated.get("text") or "").strip()
    if not text:
        return None
    original = data.get("utterance") or {}
    start, end = (  # the translation's own times, else the original's
        offset + float(original[key] if translated.get(key) is None else translated[key])
        for key in ("start", "end")
    )
    return SttTranslation(
        utterance_id=f"{session_id}:{data['utterance_id']}",  # as the final's: same segment
        language=str(data.get("target_language") or translated["language"]),
        text=text,
        start=round(start, 3),
        end=round(end, 3),
        source_language=str(data.get("original_language") or original.get("language") or ""),
    )
