"""The WebSocket origin check (``rooms/ws_origin.py``): a page may open a session socket with
the user's cookie only when its scheme, host and port are the site's own, or those of a
``CSRF_TRUSTED_ORIGINS`` entry. Every test goes through the real ``rooms.asgi.application``;
a refused handshake is closed before it is accepted (HTTP 403 on the wire)."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ROUTES = ["transcript", "signal"]
HOST = "127.0.0.1:8000"
"""Where the tests' site is served; ``127.0.0.1`` is in the default ``ALLOWED_HOSTS``."""


async def _connects(
    user: object,
    slug: str,
    *,
    route: str = "transcript",
    origin: str | None,
    host: str = HOST,
    extra: tuple[tuple[str, str], ...] = (),
) -> bool:
    """Whether ``user``'s page at ``origin`` gets the socket (the cookie is on it)."""
    from rooms.asgi import application

    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    headers += [(name.encode(), value.encode()) for name, value in extra]
    comm = WebsocketCommunicator(application, f"/ws/sessions/{slug}/{route}/", headers=headers)
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    await comm.disconnect()
    return connected


@pytest.fixture
def behind_tls_proxy(settings):
    """``TRUST_PROXY_HEADERS=true``: the balancer's ``X-Forwarded-Host``/``-Proto`` count."""
    settings.USE_X_FORWARDED_HOST = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


@pytest.mark.parametrize("route", ROUTES)
async def test_a_page_on_another_port_of_the_host_is_refused(member, video_session, route):
    assert not await _connects(
        member, video_session.slug, route=route, origin="http://127.0.0.1:9999"
    )


@pytest.mark.parametrize("route", ROUTES)
async def test_the_same_origin_page_still_connects(member, video_session, route):
    assert await _connects(member, video_session.slug, route=route, origin=f"http://{HOST}")


@pytest.mark.parametrize("route", ROUTES)
async def test_another_scheme_on_the_same_host_and_port_is_refused(member, video_session, route):
    assert not await _connects(member, video_session.slug, route=route, origin=f"https://{HOST}")


async def test_default_ports_are_the_same_origin(member, video_session):
    assert await _connects(member, video_session.slug, origin="http://127.0.0.1", host="127.0.0.1")
    assert await _connects(
        member, video_session.slug, origin="http://127.0.0.1", host="127.0.0.1:80"
    )
    assert await _connects(
        member, video_session.slug, origin="http://127.0.0.1:80", host="127.0.0.1"
    )


@pytest.mark.parametrize("route", ROUTES)
async def test_a_plain_http_page_is_refused_when_the_socket_came_over_https(
    member, video_session, route, behind_tls_proxy
):
    https = (("x-forwarded-proto", "https"), ("x-forwarded-host", HOST))

    assert not await _connects(
        member, video_session.slug, route=route, origin=f"http://{HOST}", extra=https
    )
    assert await _connects(
        member, video_session.slug, route=route, origin=f"https://{HOST}", extra=https
    )


async def test_the_proxy_names_the_host_the_page_was_served_from(
    member, video_session, behind_tls_proxy, settings
):
    settings.ALLOWED_HOSTS = ["rooms.example.com"]
    proxied = (("x-forwarded-proto", "https"), ("x-forwarded-host", "rooms.example.com"))

    assert await _connects(
        member, video_session.slug, origin="https://rooms.example.com", extra=proxied
    )
    assert not await _connects(
        member, video_session.slug, origin="http://rooms.example.com", extra=proxied
    )
    assert not await _connects(
        member, video_session.slug, origin="https://rooms.example.com:8443", extra=proxied
    )


async def test_forwarded_headers_count_only_behind_a_trusted_proxy(member, video_session):
    """Without ``TRUST_PROXY_HEADERS`` a client that says it came over https (or from another
    host) is not believed: its page must match the connection it really made."""
    claims = (("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.example"))

    assert not await _connects(member, video_session.slug, origin=f"https://{HOST}", extra=claims)
    assert not await _connects(
        member, video_session.slug, origin="https://evil.example", extra=claims
    )
    assert await _connects(member, video_session.slug, origin=f"http://{HOST}", extra=claims)


@pytest.mark.parametrize("route", ROUTES)
async def test_a_csrf_trusted_origin_connects(member, video_session, route, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.org"]

    assert await _connects(
        member, video_session.slug, route=route, origin="https://app.example.org"
    )
    assert await _connects(
        member, video_session.slug, route=route, origin="https://app.example.org:443"
    )
    assert not await _connects(
        member, video_session.slug, route=route, origin="http://app.example.org"
    )
    assert not await _connects(
        member, video_session.slug, route=route, origin="https://app.example.org:8443"
    )


async def test_a_wildcard_trusted_origin_covers_the_domain_and_its_subdomains(
    member, video_session, settings
):
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example.org"]

    for origin, accepted in (
        ("https://app.example.org", True),
        ("https://a.b.example.org", True),
        ("https://example.org", True),
        ("http://app.example.org", False),
        ("https://app.example.org:8443", False),
        ("https://evilexample.org", False),
        ("https://example.org.evil.example", False),
    ):
        assert await _connects(member, video_session.slug, origin=origin) is accepted, origin


async def test_a_host_outside_allowed_hosts_has_no_origin_of_its_own(member, video_session):
    """A rebound DNS name pointing at the server: the page and the Host header agree, but the
    host is not ours."""
    assert not await _connects(
        member, video_session.slug, origin="http://evil.example:8000", host="evil.example:8000"
    )


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "null",
        "",
        "file://",
        "chrome-extension://abcdef",
        f"ws://{HOST}",
        f"http://{HOST}/path",
        f"http://user@{HOST}",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:port",
    ],
)
async def test_a_missing_opaque_or_malformed_origin_is_refused(member, video_session, origin):
    assert not await _connects(member, video_session.slug, origin=origin)


async def test_two_origin_headers_are_refused(member, video_session):
    """Channels took the last one: a foreign origin followed by ours passed."""
    assert not await _connects(
        member,
        video_session.slug,
        origin="https://evil.example",
        extra=(("origin", f"http://{HOST}"),),
    )
