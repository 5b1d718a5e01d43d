"""Structured logging: JSON lines (or plain text), the pipeline's context, and redaction.

- ``bind(session=..., run=...)`` puts a session slug and run id into the current context
  (contextvars: an asyncio task and the threads it hands work to carry them); ``ContextFilter``
  copies them onto every record, so every line a pipeline logs names its session and run.
- ``RedactFilter`` scrubs secrets from the rendered message and traceback of every record
  before any formatter sees it: ``token=`` style query parameters, Authorization headers,
  JWTs, API keys, passwords in URLs, RTMP stream keys and the configured secrets themselves.
- ``JsonFormatter`` writes one JSON object per line; ``PlainFormatter`` is for development.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

_session: contextvars.ContextVar[str | None] = contextvars.ContextVar("log_session", default=None)
_run: contextvars.ContextVar[int | None] = contextvars.ContextVar("log_run", default=None)


def bind(*, session: str | None = None, run: int | None = None) -> None:
    """Name the session (and run) of everything logged from this context from now on."""
    if session is not None:
        _session.set(session)
    if run is not None:
        _run.set(run)


def unbound_context() -> contextvars.Context:
    """A copy of the current context without a session or run: for tasks shared by runs."""
    context = contextvars.copy_context()
    context.run(_session.set, None)
    context.run(_run.set, None)
    return context


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.session = _session.get()
        record.run = _run.get()
        return True


REDACTED = "[REDACTED]"
# As a whole name or its last part: token, access_token, api_key, x-gladia-key, stream_key...
_SENSITIVE_NAME = r"[\w-]*(?:token|key|secret|password|passwd|signature|credential|sessionid)"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # JWTs wherever they appear (transcription tokens, LiveKit tokens and webhook signatures).
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Authorization headers, as text or in a dict's repr: keep the scheme, drop the credential.
    (
        re.compile(
            r"""(authorization['"]?\s*[:=]\s*['"]?)((?:bearer|token|basic)\s+)?[^'"\s,;}]+""",
            re.IGNORECASE,
        ),
        rf"\1\2{REDACTED}",
    ),
    # Query strings and key=value / "key": "value" pairs that carry secrets.
    (
        re.compile(
            rf"""((?:^|[?&;\s,{{(\[])['"]?(?:{_SENSITIVE_NAME})['"]?\s*[:=]\s*['"]?)[^&'"\s,;}})\[\]]+""",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    # Credentials in URLs: scheme://user:password@host.
    (re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@", re.IGNORECASE), rf"\1{REDACTED}@"),
    # RTMP(S) URLs: the last path segment is the stream key.
    (re.compile(r"(rtmps?://[^/\s]+/[^/\s]+/)[^\s'\"/?]+", re.IGNORECASE), rf"\1{REDACTED}"),
]
_SECRET_SETTINGS = (
    "SECRET_KEY",
    "TRANSCRIPTION_JWT_SECRET",
    "GLADIA_API_KEY",
    "LIVEKIT_API_SECRET",
    "METRICS_TOKEN",
    "GOOGLE_CLIENT_SECRET",
    "EMAIL_HOST_PASSWORD",
    "WEBRTC_TURN_CREDENTIAL",
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) with secrets removed."""

    @staticmethod
    def configured_secrets() -> tuple[str, ...]:
        from django.conf import settings

        if not settings.configured:
            return ()
        values = (str(getattr(settings, name, "") or "") for name in _SECRET_SETTINGS)
        # Longest first, so a secret containing another is replaced whole.
        return tuple(sorted((v for v in values if len(v) >= 8), key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self.configured_secrets()
        try:
            message = record.getMessage()
        except Exception:
            # A malformed call: the handler reports it as a logging error, as without us.
            return True
        record.msg = redact(message, secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        return True


def _context_suffix(record: logging.LogRecord) -> str:
    parts = []
    if getattr(record, "session", None):
        parts.append(f"session={record.session}")
    if getattr(record, "run", None) is not None:
        parts.append(f"run={record.run}")
    return f" [{' '.join(parts)}]" if parts else ""


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger message [session=… run=…]`` for development."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record) + _context_suffix(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, ``session``,
    ``run``, ``process`` and, for exceptions, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "session": getattr(record, "session", None),
            "run": getattr(record, "run", None),
            "process": record.process,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
