"""API rate limits: fixed-window counters in the Django cache, shared by every process.

DRF's own throttles keep a list of timestamps that each request reads, appends to and writes
back: two processes answering at once both read the same list and one request goes uncounted.
Here each request is one atomic increment (Redis ``INCR`` when Redis is the cache), so several
Daphne processes never let more than the rate through a window. A refused request answers 429
with ``Retry-After`` (the seconds until the window ends) and ``code: throttled``.

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (``RATE_LIMIT_*`` settings).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:  # rest_framework.views imports this module through its settings
    from rest_framework.request import Request
    from rest_framework.views import APIView

KEY_PREFIX = "throttle"
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"20/min"`` -> (20 requests, 60 seconds); the period is read by its first letter."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period[0]]


class CacheRateThrottle(BaseThrottle):
    """Allow ``rate`` requests per window for each ``ident``; subclasses choose both."""

    scope = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def scope_for(self, request: Request, view: APIView) -> str | None:
        """The scope whose rate applies to this request, or None when it is not limited."""
        return self.scope

    def ident_for(self, request: Request) -> str | None:
        """Whom the request is counted against, or None when this throttle does not apply."""
        raise NotImplementedError

    def allow_request(self, request: Request, view: APIView) -> bool:
        scope = self.scope_for(request, view)
        ident = self.ident_for(request) if scope else None
        if scope is None or ident is None:
            return True
        limit, period = parse_rate(api_settings.DEFAULT_THROTTLE_RATES[scope])
        now = time.time()
        window = int(now // period)
        key = f"{KEY_PREFIX}:{scope}:{ident}:{window}"
        # The key lives a little past its window, then expires by itself.
        cache.add(key, 0, timeout=period + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr: this request opens it again
            cache.add(key, 1, timeout=period + 5)
            count = 1
        if count > limit:
            self._wait = (window + 1) * period - now
            return False
        return True

    def wait(self) -> float | None:
        return math.ceil(self._wait) if self._wait is not None else None


class UserThrottle(CacheRateThrottle):
    """Every API call of a signed-in user (``RATE_LIMIT_PER_MINUTE``)."""

    scope = "user"

    def ident_for(self, request: Request) -> str | None:
        user = request.user
        return f"u{user.pk}" if user and user.is_authenticated else None


class AnonThrottle(CacheRateThrottle):
    """Every anonymous API call, per client address (``RATE_LIMIT_PER_MINUTE``)."""

    scope = "anon"

    def ident_for(self, request: Request) -> str | None:
        user = request.user
        return None if user and user.is_authenticated else self.get_ident(request)


class ScopedPostThrottle(CacheRateThrottle):
    """POSTs to views that declare ``throttle_scope`` ("create" or "auth"), per user or address.

    Only the POST is counted, so a view that lists and creates (``GET``/``POST`` on one URL)
    lists at the default rate.
    """

    def scope_for(self, request: Request, view: APIView) -> str | None:
        if request.method != "POST":
            return None
        return getattr(view, "throttle_scope", None)

    def ident_for(self, request: Request) -> str | None:
        user = request.user
        if user and user.is_authenticated:
            return f"u{user.pk}"
        return self.get_ident(request)
