"""Failed sign-in limits: allauth's ``login_failed`` counters, shared by every way in.

allauth counts failed password checks per client address and per account (``login_failed`` in
``ACCOUNT_RATE_LIMITS``); its sign-in page, the API token endpoint (``identity.api``) and the
admin's sign-in (``identity.views.admin_login``) all authenticate through its adapter, so they
count against the same keys. This module names the per-account key, says how long a refused
client should wait, and clears the per-account lock when the owner proves access another way.

It reads allauth's counters through ``allauth.core.internal.ratelimit``: an internal module of
the pinned django-allauth (requirements.txt); ``tests/identity/test_lockout.py`` fails if it
changes shape.
"""

from __future__ import annotations

import math
import time

from allauth.core.internal import ratelimit
from django.core.cache import cache
from django.http import HttpRequest

APP = "allauth.account"


def login_failed_key(email: str) -> str:
    """The per-account key of ``login_failed``: the email address, lower-cased.

    allauth's own key also holds the request's host name (``RequestSite`` without
    ``django.contrib.sites``), port included: a guesser who varied ``Host: example.com:1``,
    ``:2``, ... got a fresh per-account count each time.
    """
    return email.strip().lower()


def retry_after(request: HttpRequest, *, action: str, email: str | None = None) -> int:
    """Whole seconds until allauth's limits for ``action`` take another attempt from this
    client (and, for per-account rates, for ``email``); 0 when they take one now."""
    now = time.time()
    wait = 0.0
    for rate in ratelimit.get_rates(app=APP, action=action):
        if rate.per == "user" or (rate.per == "key" and not email):
            continue
        key = login_failed_key(email) if rate.per == "key" and email else None
        cache_key = ratelimit.get_cache_key(request, app=APP, action=action, rate=rate, key=key)
        # Newest first, as allauth keeps them; only those inside the window count.
        history = [t for t in cache.get(cache_key, []) if t > now - rate.duration]
        if len(history) >= rate.amount:
            wait = max(wait, history[rate.amount - 1] + rate.duration - now)
    return math.ceil(wait)


def account_lock_clear(*, email: str) -> None:
    """Forget the failed sign-ins counted against ``email`` (not those of any address): for
    when its owner has just proved access another way, e.g. by a password reset."""
    for rate in ratelimit.get_rates(app=APP, action="login_failed"):
        if rate.per == "key":
            cache_key = ratelimit.get_cache_key(
                HttpRequest(),  # a per-key count depends on the key alone
                app=APP,
                action="login_failed",
                rate=rate,
                key=login_failed_key(email),
            )
            cache.delete(cache_key)
