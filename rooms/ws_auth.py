"""Who is on a WebSocket: the session cookie and Django's user, as ``AuthMiddlewareStack`` does,
without its per-message cost.

Channels' ``SessionMiddleware`` wraps ``send`` so that an HTTP response can save a changed
session and set its cookie. A WebSocket never does either (no consumer here changes the session,
and a socket cannot set a cookie), yet every frame sent to a client went through that wrapper:
about a tenth of a Daphne's time in the fan-out benchmark (docs/benchmarks.md). Here the
session is resolved the same way and ``send`` is passed on untouched.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware


class ReadOnlySessionMiddleware(SessionMiddleware):
    """``scope["session"]`` from the cookie, as Channels does; ``send`` is not wrapped."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


def WebSocketAuthStack(inner: Any) -> Any:
    return CookieMiddleware(ReadOnlySessionMiddleware(AuthMiddleware(inner)))
