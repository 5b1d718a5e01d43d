"""WebSocket authentication shared by the session's sockets (transcript, mesh signalling).

A socket is authenticated by the Django session cookie, or by ``?token=<transcription JWT>``
(which names the session and the participant identity). Only members of the session's space
get in; an outsider cannot tell a forbidden session from a missing one.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from autobahn.exception import Disconnected
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404, HttpRequest
from django.utils import translation

from identity.models import User
from identity.selectors import user_get_by_identity
from sessions_app.models import VideoSession
from sessions_app.selectors import session_get_for_user
from sessions_app.tokens import InvalidTranscriptionToken, transcription_token_decode
from spaces.access import access_group, revoked_message
from spaces.selectors import membership_get

CLOSE_UNAUTHENTICATED = 4001
CLOSE_MALFORMED = 4002
CLOSE_FORBIDDEN = 4003
CLOSE_SESSION_ENDED = 4004


async def ws_authenticate(
    scope: dict[str, Any], slug: str
) -> tuple[User, VideoSession] | tuple[None, int]:
    """``(user, session)`` for a member, else ``(None, close_code)``.

    The session may be ENDED; each consumer decides what that means for it.
    """
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tokens = query.get("token")
    user: User | None
    if tokens:
        try:
            claims = transcription_token_decode(tokens[0])
        except InvalidTranscriptionToken:
            return None, CLOSE_UNAUTHENTICATED
        if claims.session_slug != slug:
            return None, CLOSE_FORBIDDEN
        user = await database_sync_to_async(user_get_by_identity)(identity=claims.identity)
        if user is None:
            return None, CLOSE_UNAUTHENTICATED
    else:
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            return None, CLOSE_UNAUTHENTICATED
    session = await database_sync_to_async(_session_for)(user, slug)
    if session is None:
        return None, CLOSE_FORBIDDEN
    return user, session


def socket_language(scope: dict[str, Any], user: User) -> str:
    """The interface language of a socket's messages, chosen as for pages: the person's profile
    setting, else the language cookie, else the browser's ``Accept-Language``, else
    ``LANGUAGE_CODE``."""
    if user.language:
        return user.language
    request = HttpRequest()
    request.COOKIES = scope.get("cookies") or {}
    headers = dict(scope.get("headers") or [])
    request.META["HTTP_ACCEPT_LANGUAGE"] = headers.get(b"accept-language", b"").decode("latin-1")
    return translation.get_language_from_request(request)


def _session_for(user: User, slug: str) -> VideoSession | None:
    try:
        return session_get_for_user(user=user, slug=slug)
    except Http404:
        return None


class SessionSocketMixin:
    """``open_session_socket()`` for the consumers of a session's WebSockets.

    Close codes only reach a client after the handshake, so it accepts first, then closes with
    4001/4003 for strangers and 4004 (after a ``session_ended`` message) once the session
    ended. On success ``self.user`` and ``self.session`` are set, and the socket listens on its
    person's access group (``spaces.access``): losing the membership closes it with 4003
    (``access_revoked``). ``close_session_socket()`` must run on disconnect.
    """

    user: User
    session: VideoSession
    revocation_group: str = ""
    # Messages for the page are written in this language (``socket_language``).
    interface_language: str = ""

    async def open_session_socket(self, *, allow_ended: bool = False) -> bool:
        await self.accept()  # type: ignore[attr-defined]
        slug = self.scope["url_route"]["kwargs"]["slug"]  # type: ignore[attr-defined]
        user, session = await ws_authenticate(self.scope, slug)  # type: ignore[attr-defined]
        if user is None:
            await self.close(code=session)  # type: ignore[attr-defined]
            return False
        if session.status == VideoSession.Status.ENDED and not allow_ended:
            await self.send(text_data=json.dumps({"type": "session_ended"}))  # type: ignore[attr-defined]
            await self.close(code=CLOSE_SESSION_ENDED)  # type: ignore[attr-defined]
            return False
        self.user, self.session = user, session
        self.interface_language = socket_language(self.scope, user)  # type: ignore[attr-defined]
        group = access_group(space_id=session.space_id, user_id=user.pk)
        await self.channel_layer.group_add(group, self.channel_name)  # type: ignore[attr-defined]
        self.revocation_group = group
        # A removal committed between the check above and joining the group sent its
        # revocation to nobody: look again now that a later one would reach this socket.
        still = await database_sync_to_async(membership_get)(user=user, space_id=session.space_id)
        if still is None:
            await self.access_revoked({})
            return False
        return True

    async def close_session_socket(self) -> None:
        """Leave the access group (idempotent)."""
        if self.revocation_group:
            group, self.revocation_group = self.revocation_group, ""
            await self.channel_layer.group_discard(group, self.channel_name)  # type: ignore[attr-defined]

    async def access_revoked(self, event: dict[str, Any]) -> None:
        """``access.revoked``: this person lost access to the space (or the session is gone).

        Tell the page why, then close with 4003; each consumer's ``disconnect`` does the rest.
        """
        with translation.override(self.interface_language or None):
            message = revoked_message()
        await self.send(text_data=json.dumps(message))  # type: ignore[attr-defined]
        await self.close(code=CLOSE_FORBIDDEN)  # type: ignore[attr-defined]


class QuietCloseMixin:
    """Nothing is sent on a socket that is closing, and trying is not an error.

    Between a close (ours, or the client's) and ``disconnect`` the consumer is still in its
    groups, so events keep coming: peers leaving as the session ends, a run's last status.
    Daphne refuses a send then (autobahn's ``Disconnected``: "Attempt to send on a closed
    protocol"), which ended the consumer with a traceback. Such sends are dropped instead.
    Put it before ``AsyncWebsocketConsumer`` in the bases; ``disconnect`` sets ``closing``.
    """

    closing = False

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        if self.closing:
            return
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)  # type: ignore[misc]
        except Disconnected:
            self.closing = True  # the client closed first; its disconnect is on its way
        if close:
            self.closing = True

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        if self.closing:
            return
        self.closing = True
        await super().close(code=code, reason=reason)  # type: ignore[misc]


class NoRouteConsumer(AsyncWebsocketConsumer):
    """Every WebSocket path no route matches (a bad slug, an unknown socket): the handshake is
    refused with HTTP 403, as for a foreign origin, instead of a server error."""

    async def connect(self) -> None:
        await self.close()
