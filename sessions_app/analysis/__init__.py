"""After-session analysis: summary, key topics, action items and speaker stats.

``analyse`` runs the configured provider (``settings.ANALYSIS_PROVIDER``): the offline one
(``offline.py``, numpy only), the LLM one (``llm.py``, falling back to offline on any error),
or a ``package.module:function`` taking an ``AnalysisInput`` and returning an
``AnalysisResult``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils.module_loading import import_string

from sessions_app.analysis import llm, offline
from sessions_app.analysis.types import AnalysisInput, AnalysisResult

logger = logging.getLogger(__name__)


def llm_config() -> llm.LlmConfig:
    return llm.LlmConfig(
        base_url=settings.LLM_BASE_URL,
        api_key=settings.LLM_API_KEY,
        model=settings.LLM_MODEL,
        timeout_seconds=settings.LLM_TIMEOUT_SECONDS,
        max_prompt_chars=settings.LLM_MAX_PROMPT_CHARS,
    )


def analyse_with_llm(data: AnalysisInput) -> AnalysisResult:
    """The LLM's analysis, or the offline one (with a ``note`` saying why) when the LLM fails."""
    stats = offline.speaker_stats(data.utterances)
    try:
        answer = llm.analyse(data, llm_config())
    except llm.LlmError as exc:
        logger.warning("LLM analysis failed, falling back to offline: %s", exc)
        result = offline.analyse(data)
        result.note = f"The LLM analyser failed ({exc}); this is the offline analysis."
        return result
    return AnalysisResult(
        provider=llm.PROVIDER,
        summary=answer.summary,
        topics=answer.topics,
        action_items=answer.action_items,
        speaker_stats=stats,
    )


def analyse(data: AnalysisInput) -> AnalysisResult:
    provider = settings.ANALYSIS_PROVIDER
    if provider == "offline":
        return offline.analyse(data)
    if provider == "llm":
        return analyse_with_llm(data)
    return import_string(provider.replace(":", "."))(data)
