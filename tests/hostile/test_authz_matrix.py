"""Authorisation matrix: every URL and every WebSocket route, as a stranger.

The URL patterns are discovered from the resolver (recursively, admin and allauth included),
their path converters filled with the OWNER's real objects (space, session, membership, invite,
task), and every method is tried (GET, POST, PUT, PATCH, DELETE; a view that does not allow one
answers 405) as an anonymous visitor and as an outsider (signed in, member of no space of the
owner), from a non-local address. Each request runs in a savepoint that is rolled back, so every
request sees the same world whatever the previous one did.

Allowed answers: 302 to a sign-in page, 401, 403, 404, 405. A 2xx is allowed only for a route in
the commented allowlists below, and even then the body must not contain the owner's data. A new
route that answers 2xx to a stranger fails this test until it is added to a list with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils import timezone

from rooms.routing import websocket_urlpatterns
from sessions_app.tokens import transcription_token_create
from spaces.models import SpaceInvite, SpaceMember
from tests.factories import VideoSessionFactory
from tests.live import session_socket
from transcription.models import TranscriptionRun, TranscriptSegment

METHODS = ("get", "post", "put", "patch", "delete")
STRANGER_ADDRESS = "203.0.113.7"  # TEST-NET-3: not loopback, not a private network
SIGN_IN_PAGES = ("/accounts/login/", "/admin/login/")
REFUSALS = {401, 403, 404, 405}

PUBLIC = {
    # Sign-in, sign-up, password reset and the rest of allauth: pages for strangers by design.
    "accounts/*",
    # The admin's own sign-in page, and its sign-out (which sends a stranger to the admin).
    "admin/login/",
    "admin/logout/",
    # Liveness and readiness probes for load balancers (no data, only "ok"/check names).
    "health",
    "health/ready",
    # The home page redirects to the spaces list (which then asks to sign in).
    "",
    # Browsers ask for /favicon.ico: a redirect to the static icon.
    "favicon.ico",
    # The API description and its reference page are public documentation.
    "api/schema/",
    "api/docs/",
    # Exchanges email + password for a token: the sign-in of API clients.
    "api/auth/token",
    # LiveKit's webhook is authenticated by its signature (401 unsigned; test_webhooks.py).
    "api/livekit/webhook",
    # The interface language: the switcher (sets a cookie; a stranger's choice is theirs) and
    # the page scripts' translation catalogue (the same for everyone, no data).
    "language/",
    "jsi18n/",
    # Invite links: the token in the URL is the capability; holding it lets one join.
    "invite/<str:token>/",
    "api/invites/<str:token>/accept",
}
"""Routes a stranger may get a 2xx from, by route template ("prefix/*": a whole sub-site)."""

OWN_DATA = {
    # The outsider's own profile, usage, spaces, sessions and statistics: about themselves.
    "me/profile/",
    "me/usage/",
    "spaces/",
    "api/me",
    "api/spaces",
    "api/sessions",
    "api/transcription/stats",
    # Search finds only the caller's own spaces' meetings (outsider: nothing).
    "search/",
    "api/search",
}
"""Routes a signed-in outsider may get a 2xx from: they show or create the caller's own data."""


def _walk(patterns, prefix: tuple = ()) -> Iterator[tuple[tuple, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, (*prefix, (pattern.pattern, pattern.namespace)))
        else:
            yield (*prefix, (pattern.pattern, None)), pattern


def _template(parts: tuple) -> str:
    return "".join(str(p) for p, _ in parts)


REGEX_SAMPLES = {
    # Unnamed regex patterns (cannot be reversed): a sample of what they match.
    r"(?P<url>.*)$": "no-such-page/",
    r"^media/(?P<path>.*)$": "media/avatars/none.png",
}


def _fill(template: str, values: dict[str, Any]) -> dict[str, str]:
    """Converter values for a route: the owner's objects, by parameter name."""
    kind = "space" if re.search(r"spaces/<[^>]+:slug>", template) else "session"
    filled = {}
    for name in re.findall(r"\(\?P<(\w+)>|<(?:\w+:)?(\w+)>", template):
        name = next(n for n in name if n)
        if name == "slug":
            filled[name] = values[f"{kind}_slug"]
        else:
            filled[name] = str(values.get(name, "1"))
    return filled


def _url(parts: tuple, pattern: URLPattern, values: dict[str, Any]) -> str:
    template = _template(parts)
    kwargs = _fill(template, values)
    if pattern.name:
        namespaces = [ns for _, ns in parts if ns]
        return reverse(":".join([*namespaces, pattern.name]), kwargs=kwargs)
    last = parts[-1][0]
    if isinstance(last, RoutePattern):
        path = template
        for name, value in kwargs.items():
            path = re.sub(rf"<(?:\w+:)?{name}>", value, path)
        return "/" + path
    assert isinstance(last, RegexPattern)
    sample = REGEX_SAMPLES.get(str(last))
    assert sample is not None, f"unnamed regex route {template!r}: add a sample to REGEX_SAMPLES"
    return "/" + "".join(str(p) for p, _ in parts[:-1]) + sample


def _allowlisted(template: str, allowlist: set[str]) -> bool:
    return template in allowlist or any(
        template.startswith(p[:-1]) for p in allowlist if p.endswith("/*")
    )


@pytest.fixture
def world(owner, member, space, video_session) -> dict[str, Any]:
    from sessions_app.models import Task

    video_session.title = "SECRET-SESSION-TITLE"
    video_session.save(update_fields=["title"])
    run = TranscriptionRun.objects.create(
        session=video_session, mode="BROWSER", provider="local", status="STOPPED"
    )
    TranscriptSegment.objects.create(
        session=video_session,
        run=run,
        utterance_id="u-secret",
        text="SECRET-TRANSCRIPT-TEXT",
        start_offset=0,
        end_offset=1,
        language="en",
    )
    invite = SpaceInvite.objects.create(
        space=space, created_by=owner, expires_at=timezone.now() + timedelta(days=7)
    )
    task = Task.objects.create(space=space, session=video_session, title="SECRET-TASK-TITLE")
    return {
        "space_slug": space.slug,
        "session_slug": video_session.slug,
        "member_id": SpaceMember.objects.get(space=space, user=member).pk,
        "token": invite.token,
        "invite_id": invite.pk,
        "task_id": task.pk,
        "fmt": "txt",
        "id": owner.pk,
        "object_id": owner.pk,
        "content_type_id": 1,
        "app_label": "spaces",
        "key": "x",
        "uidb36": "1",
        # What no stranger may ever see.
        "secrets": [
            "SECRET-SESSION-TITLE",
            "SECRET-TRANSCRIPT-TEXT",
            "SECRET-TASK-TITLE",
            video_session.slug,
            owner.email,
            member.email,
        ],
    }


def _routes(world: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (_template(parts), _url(parts, pattern, world))
        for parts, pattern in _walk(get_resolver().url_patterns)
    ]


def _verdict(response, template: str, who: str, secrets: list[str]) -> str | None:
    """None when the answer is acceptable, else why not."""
    status = response.status_code
    body = response.content.decode(errors="replace") if hasattr(response, "content") else ""
    if status >= 500:
        return f"server error {status}"
    leaked = [s for s in secrets if s in body]
    if leaked:
        return f"{status} exposes {leaked}"
    if status in REFUSALS:
        return None
    if status in (301, 302, 303, 307, 308):
        location = response.headers.get("Location", "")
        if location.startswith(SIGN_IN_PAGES) or _allowlisted(template, PUBLIC):
            return None
        if who == "outsider" and _allowlisted(template, OWN_DATA):
            return None
        return f"{status} redirect to {location!r}, not to a sign-in page"
    if _allowlisted(template, PUBLIC):
        return None
    if who == "outsider" and _allowlisted(template, OWN_DATA):
        return None
    return f"{status}: a stranger got an answer that is not a refusal (not in an allowlist)"


@pytest.mark.django_db
def test_every_url_refuses_strangers_or_is_allowlisted(world, outsider):
    clients = {
        "anonymous": Client(REMOTE_ADDR=STRANGER_ADDRESS),
        "outsider": Client(REMOTE_ADDR=STRANGER_ADDRESS),
    }
    clients["outsider"].force_login(outsider)
    routes = _routes(world)
    problems, requests = [], 0
    for template, url in routes:
        for who, client in clients.items():
            for method in METHODS:
                sid = transaction.savepoint()
                try:
                    response = getattr(client, method)(url)
                finally:
                    transaction.savepoint_rollback(sid)
                requests += 1
                why = _verdict(response, template, who, world["secrets"])
                if why:
                    problems.append(f"{who} {method.upper()} {url} ({template}): {why}")
    print(f"authorisation matrix: {len(routes)} routes, {requests} requests")
    assert len(routes) > 100  # the resolver walk found the whole site, admin included
    assert problems == [], "\n".join(problems)


def test_allowlists_name_only_routes_that_exist():
    templates = {_template(parts) for parts, _ in _walk(get_resolver().url_patterns)}
    for entry in PUBLIC | OWN_DATA:
        assert any(_allowlisted(t, {entry}) for t in templates), (
            f"allowlisted route {entry!r} does not exist any more"
        )


@pytest.mark.parametrize(
    ("status", "location", "template", "who", "body", "expected"),
    [
        (200, "", "api/spaces/<slug:slug>", "outsider", "{}", "not a refusal"),
        (200, "", "api/spaces", "outsider", "{}", None),
        (200, "", "api/spaces", "anonymous", "{}", "not a refusal"),
        (200, "", "api/me", "outsider", "owner@example.com", "exposes"),
        (302, "/accounts/login/?next=/x", "spaces/<slug:slug>/", "anonymous", "", None),
        (302, "/spaces/", "spaces/<slug:slug>/", "outsider", "", "not to a sign-in page"),
        (404, "", "sessions/<str:slug>/", "outsider", "", None),
        (500, "", "sessions/<str:slug>/", "outsider", "", "server error"),
    ],
)
def test_the_verdict_refuses_what_a_stranger_must_not_get(
    status, location, template, who, body, expected
):
    class Response:
        def __init__(self):
            self.status_code, self.content = status, body.encode()
            self.headers = {"Location": location}

    why = _verdict(Response(), template, who, ["owner@example.com"])

    assert (why is None) if expected is None else (expected in why)


# --- WebSocket routes --------------------------------------------------------------------------


def _ws_paths(slug: str) -> list[str]:
    """Every WebSocket route, its slug group filled with the owner's session."""
    paths = []
    for route in websocket_urlpatterns:
        regex = route.pattern.regex.pattern
        if "(?P<slug>" not in regex:
            continue  # the catch-all refusing unknown paths: tested in test_ws_fuzz.py
        path = re.sub(r"\(\?P<slug>[^)]*\)", slug, regex).strip("^$")
        paths.append("/" + path.replace("\\", ""))
    return paths


async def _close_code(user, path: str) -> int | None:
    comm = session_socket(user, path)
    connected, _ = await comm.connect()
    assert connected  # accepted first so the close code reaches the client
    message = await comm.receive_output(timeout=5)
    await comm.wait()
    return message.get("code") if message["type"] == "websocket.close" else None


@pytest.mark.django_db(transaction=True)
def test_every_websocket_route_refuses_strangers(owner, space, outsider):
    session = VideoSessionFactory(space=space, created_by=owner)
    other_space_session = VideoSessionFactory()
    paths = _ws_paths(session.slug)
    assert len(paths) >= 2
    own_token = transcription_token_create(session_slug=session.slug, identity=outsider.identity)
    other_token = transcription_token_create(
        session_slug=other_space_session.slug, identity=outsider.identity
    )
    answers = {}
    for path in paths:
        answers[f"anonymous {path}"] = async_to_sync(_close_code)(None, path)
        answers[f"outsider cookie {path}"] = async_to_sync(_close_code)(outsider, path)
        answers[f"outsider's own token {path}"] = async_to_sync(_close_code)(
            None, f"{path}?token={own_token}"
        )
        answers[f"token for another session {path}"] = async_to_sync(_close_code)(
            None, f"{path}?token={other_token}"
        )
    expected = {}
    for path in paths:
        expected[f"anonymous {path}"] = 4001
        expected[f"outsider cookie {path}"] = 4003
        expected[f"outsider's own token {path}"] = 4003
        expected[f"token for another session {path}"] = 4003
    assert answers == expected
