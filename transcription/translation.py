"""Caption translation: which languages a listener may choose, who translates, and how.

A session's one transcription stream is translated into the languages its listeners chose
(``User.caption_language``): by Gladia inside the live stream where the provider is Gladia
(``docs/gladia-translation.md``), else by the optional LLM, finals in ordered batches. Each
translation is stored once per segment and language (``SegmentTranslation``); it is *stale* once
the original was corrected after it (``source_revision`` < the segment's ``revision``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from django.conf.locale import LANG_INFO
from django.utils.translation import gettext, gettext_noop

from rooms import llm
from rooms.errors import DomainError
from spaces.languages import COMMON_LANGUAGES
from transcription.models import SegmentTranslation

TranslationVia = Literal["gladia", "llm", ""]

CAPTION_LANGUAGES = COMMON_LANGUAGES
"""The languages the caption menu offers (Gladia translates into each of them)."""

LLM_SYSTEM_PROMPT = (
    "You translate live meeting captions from speech recognition. Translate each caption in "
    "the JSON list you are given into {language}, keeping its meaning, names and numbers; a "
    "caption already in {language} stays as it is. Answer with one JSON object and nothing "
    'else: {{"translations": [string, ...]}}, exactly one string per caption, in the same order.'
)


@dataclass(frozen=True, slots=True)
class StoredTranslation:
    text: str
    stale: bool
    """The original was corrected after this translation was made."""

    def payload(self, language: str) -> dict[str, object]:
        return {"language": language, "text": self.text, "stale": self.stale}


def translation_via(provider: str) -> TranslationVia:
    """Who translates a run of ``provider``: Gladia itself, else the LLM if one is configured,
    else nobody ("")."""
    if provider == "gladia":
        return "gladia"
    return "llm" if llm.enabled() else ""


def caption_language_clean(value: object) -> str:
    """``value`` as a caption language: "" (the original) or one of ``CAPTION_LANGUAGES`` (every
    translator here can do those; Gladia cannot translate into every known code). Else
    ``DomainError`` (code ``language_invalid``)."""
    if value == "" or (isinstance(value, str) and value in CAPTION_LANGUAGES):
        return str(value)
    raise DomainError(
        gettext("“%(code)s” is not a caption language here: choose one of %(languages)s.")
        % {"code": str(value)[:20], "languages": ", ".join(CAPTION_LANGUAGES)},
        code="language_invalid",
    )


def segment_translations(*, session_id: int, language: str) -> dict[int, StoredTranslation]:
    """The session's stored translations into ``language``, by segment id."""
    if not language:
        return {}
    rows = SegmentTranslation.objects.filter(session_id=session_id, language=language).values_list(
        "segment_id", "text", "source_revision", "segment__revision"
    )
    return {
        segment_id: StoredTranslation(text=text, stale=source_revision < revision)
        for segment_id, text, source_revision, revision in rows
    }


def llm_translate(client: llm.LlmClient, texts: Sequence[str], *, target: str) -> list[str]:
    """``texts`` translated into ``target`` by the LLM, one request, in order. Raises
    ``llm.LlmError`` unless the answer has exactly one string per text."""
    name = LANG_INFO.get(target, {}).get("name", target)
    answer = client.ask(
        LLM_SYSTEM_PROMPT.format(language=name), json.dumps(list(texts), ensure_ascii=False)
    )
    translations = answer.get("translations")
    if (
        not isinstance(translations, list)
        or len(translations) != len(texts)
        or not all(isinstance(t, str) for t in translations)
    ):
        raise llm.LlmError(gettext_noop("the LLM answer is not one translation per caption"))
    return [t.strip()[:4000] for t in translations]
