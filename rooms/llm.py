"""The optional LLM: an OpenAI-compatible ``POST {base}/chat/completions`` answering JSON.

Shared infrastructure for every feature that asks it something (the after-session analysis,
live caption translation, questions to the archive). Any failure (network, timeout, HTTP status,
a reply that is not a JSON object) raises ``LlmError``; each caller decides its fallback.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.utils.translation import gettext, gettext_noop

_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)


class LlmError(Exception):
    """The LLM could not give a usable answer.

    ``str()`` is the reason in English (for logs); ``reason()`` is it in the active language,
    for the note people read.
    """

    def __init__(self, message: str, **params: object) -> None:
        # ``message`` is a msgid marked with ``gettext_noop``, with %(name)s placeholders.
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params

    def reason(self) -> str:
        text = gettext(self.message)
        return text % self.params if self.params else text


@dataclass(frozen=True, slots=True)
class LlmConfig:
    base_url: str
    api_key: str
    model: str
    timeout_seconds: float
    max_prompt_chars: int


def enabled() -> bool:
    """Whether an LLM is configured (``LLM_BASE_URL``, ``LLM_API_KEY`` and ``LLM_MODEL``)."""
    return bool(settings.LLM_ENABLED)


def llm_config(*, timeout_seconds: float | None = None) -> LlmConfig:
    """The configured LLM; ``timeout_seconds`` overrides ``LLM_TIMEOUT_SECONDS`` (live work
    needs a shorter one than an after-session analysis)."""
    return LlmConfig(
        base_url=settings.LLM_BASE_URL,
        api_key=settings.LLM_API_KEY,
        model=settings.LLM_MODEL,
        timeout_seconds=timeout_seconds or settings.LLM_TIMEOUT_SECONDS,
        max_prompt_chars=settings.LLM_MAX_PROMPT_CHARS,
    )


def _content(response: httpx.Response) -> str:
    if response.status_code != 200:
        raise LlmError(
            gettext_noop("the LLM API answered HTTP %(status)s"), status=response.status_code
        )
    try:
        body = response.json()
        content = body["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LlmError(gettext_noop("the LLM API answer is not a chat completion")) from exc
    if not isinstance(content, str):
        raise LlmError(gettext_noop("the LLM API answer has no text content"))
    return content


def parse_object(content: str) -> dict[str, Any]:
    """The JSON object in ``content`` (a Markdown code fence around it is tolerated)."""
    try:
        value = json.loads(_FENCE_RE.sub("", content))
    except ValueError as exc:
        raise LlmError(gettext_noop("the LLM did not answer with JSON")) from exc
    if not isinstance(value, dict):
        raise LlmError(gettext_noop("the LLM did not answer with a JSON object"))
    return value


class LlmClient:
    """A synchronous client (run it in a thread from async code). ``requests`` counts calls."""

    def __init__(self, config: LlmConfig) -> None:
        self.config = config
        self._http = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            timeout=config.timeout_seconds,
            headers={"Authorization": f"Bearer {config.api_key}"},
        )
        self.requests = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LlmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ask(self, system: str, user: str) -> dict[str, Any]:
        payload = {
            "model": self.config.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0,
            "response_format": {"type": "json_object"},
        }
        self.requests += 1
        try:
            response = self._http.post("/chat/completions", json=payload)
        except httpx.TimeoutException as exc:
            timeout = self.config.timeout_seconds
            raise LlmError(
                gettext_noop("the LLM API timed out after %(seconds)s s"), seconds=f"{timeout:g}"
            ) from exc
        except httpx.HTTPError as exc:
            raise LlmError(
                gettext_noop("the LLM API could not be reached: %(error)s"), error=str(exc)
            ) from exc
        return parse_object(_content(response))
