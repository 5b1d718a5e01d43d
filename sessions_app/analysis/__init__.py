"""After-session analysis: summary, key topics, action items and speaker stats.

``analyse`` runs the configured provider (``settings.ANALYSIS_PROVIDER``): the offline one
(``offline.py``, numpy only), the LLM one (``llm.py``, falling back to offline on any error),
or a ``package.module:function`` taking an ``AnalysisInput`` and returning an
``AnalysisResult``.

The analysis is stored and read later by everybody, so the text it writes (the room's name in
the speaker stats, the note on a fallback; the LLM's summary too, asked for in ``llm.py``) is in
the meeting's language, not in the language of whoever's request started it.
"""

from __future__ import annotations

import dataclasses
import logging
from contextlib import AbstractContextManager

from django.conf import settings
from django.utils import translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext

from rooms.llm import LlmError, llm_config
from sessions_app.analysis import llm, offline
from sessions_app.analysis.text import transcript_language
from sessions_app.analysis.types import AnalysisInput, AnalysisResult

logger = logging.getLogger(__name__)


def meeting_language_active(data: AnalysisInput) -> AbstractContextManager[None]:
    """Activate the meeting's language (``text.transcript_language``); the default language
    when the product has no catalogue for it."""
    language = transcript_language(data.utterances, data.language)
    known = {code for code, _name in settings.LANGUAGES}
    return translation.override(language if language in known else settings.LANGUAGE_CODE)


def analyse_with_llm(data: AnalysisInput) -> AnalysisResult:
    """The LLM's analysis, or the offline one (with a ``note`` saying why, in the active
    language) when the LLM fails."""
    try:
        answer = llm.analyse(data, llm_config())
    except LlmError as exc:
        logger.warning("LLM analysis failed, falling back to offline: %s", exc)
        result = offline.analyse(data)
        result.note = gettext(
            "The LLM analyser failed (%(reason)s); this is the offline analysis."
        ) % {"reason": exc.reason()}
        return result
    stats = offline.speaker_stats(data.utterances, room_name=data.room_name)
    return AnalysisResult(
        provider=llm.PROVIDER,
        summary=answer.summary,
        topics=answer.topics,
        action_items=answer.action_items,
        speaker_stats=stats,
    )


def analyse(data: AnalysisInput) -> AnalysisResult:
    """The configured provider's analysis of ``data``, its own text in the meeting's
    language."""
    provider = settings.ANALYSIS_PROVIDER
    with meeting_language_active(data):
        data = dataclasses.replace(data, room_name=gettext("Room"))
        if provider == "offline":
            return offline.analyse(data)
        if provider == "llm":
            return analyse_with_llm(data)
        return import_string(provider.replace(":", "."))(data)
