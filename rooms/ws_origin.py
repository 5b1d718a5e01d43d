"""The WebSocket origin check: a socket opens only for a page of this site.

Browsers send the page's ``Origin`` with every WebSocket handshake and attach the user's
cookies whatever that origin is, so this check is what stops another site's page (or a plain
``http://`` page of our own host, or a page on another port of it) from opening a socket in the
user's name. Unlike Channels' ``AllowedHostsOriginValidator``, which compares host names only,
an origin is accepted only when its scheme, host and port are those of:

* the request's own origin: the scheme and host that Django's HTTP side would see for the
  handshake (``ALLOWED_HOSTS``; behind our balancer ``X-Forwarded-Host`` with
  ``USE_X_FORWARDED_HOST`` and ``X-Forwarded-Proto`` with ``SECURE_PROXY_SSL_HEADER``), ``ws``
  counting as ``http`` and ``wss`` as ``https``; or
* an entry of ``CSRF_TRUSTED_ORIGINS``, including Django's ``https://*.example.com`` form (the
  domain and its subdomains), as Django's CSRF check reads it.

Default ports are normalised (``http://host`` is ``http://host:80``). A handshake without an
``Origin`` header, with several, or with anything but an ``http(s)`` origin (``null``, a
``file:`` page) is refused, as Channels' validator refuses a missing one: browsers always send
it, and API clients (``?token=``) send the origin of the site they talk to.

Refused handshakes get the same answer as before: HTTP 403 (Channels' ``WebsocketDenier``).
Settings are read on every handshake, so tests may override them.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import SplitResult, urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.utils.http import is_same_domain

Origin = tuple[str, str, int]
"""An origin as compared: scheme (``http``/``https``), lower-case host, port."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SECURE_SOCKET_SCHEMES = {"wss", "https"}


def _parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` as an :data:`Origin`; None for anything else (a path, user
    information, another scheme, a bad port...)."""
    try:
        parts: SplitResult = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        return None
    return scheme, parts.hostname, _DEFAULT_PORTS[scheme] if port is None else port


def request_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin of the site the handshake in ``scope`` was addressed to, by the rules of
    Django's HTTP side (``request.scheme`` and ``request.get_host()``); None when its host is
    not one of ``ALLOWED_HOSTS``."""
    scheme = "https" if scope.get("scheme") in _SECURE_SOCKET_SCHEMES else "http"
    # Only the headers, server address and scheme matter; the query string is left out because
    # Django would decode it as UTF-8, and a hostile one must not break the handshake.
    handshake = {**scope, "method": "GET", "scheme": scheme, "query_string": b""}
    request = ASGIRequest(handshake, io.BytesIO())
    try:
        host = request.get_host()
    except DisallowedHost:
        return None
    return _parse_origin(f"{request.scheme}://{host}")


def _trusted(origin: Origin) -> bool:
    """Whether ``origin`` is one of ``CSRF_TRUSTED_ORIGINS`` (``*.`` entries: the domain and its
    subdomains, same scheme and port)."""
    scheme, host, port = origin
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in entry
        trusted = _parse_origin(entry.replace("://*.", "://", 1) if wildcard else entry)
        if trusted is None or trusted[0] != scheme or trusted[2] != port:
            continue
        if host == trusted[1] or (wildcard and is_same_domain(host, "." + trusted[1])):
            return True
    return False


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether the handshake in ``scope`` comes from a page this site trusts (module doc)."""
    values = [value for name, value in scope.get("headers", []) if name.lower() == b"origin"]
    if len(values) != 1:
        return False
    origin = _parse_origin(values[0].decode("latin1"))
    if origin is None:
        return False
    return origin == request_origin(scope) or _trusted(origin)


class SameOriginValidator:
    """ASGI middleware for the ``websocket`` protocol: passes the handshakes that
    :func:`origin_allowed` accepts to ``application``, and refuses the rest with HTTP 403."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator only guards WebSocket connections")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier.as_asgi()(scope, receive, send)
