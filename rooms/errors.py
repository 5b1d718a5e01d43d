"""Domain errors raised by services; pages and the API turn them into clear messages.

Each error has a machine-readable ``code`` and the HTTP status the API answers with, so a rule
is written once in a service and reported the same way everywhere.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "invalid"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        data: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.message = message
        # More the client needs to recover (e.g. the current version after a conflict).
        self.data = data or {}
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class Conflict(DomainError):
    code = "conflict"
    status = 409


class LimitExceeded(DomainError):
    code = "limit_exceeded"
    status = 429
