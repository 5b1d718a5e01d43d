"""The API describes itself, and refuses anonymous callers cleanly (never a 500)."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, reverse
from rest_framework.test import APIClient

from rooms.urls import api_patterns

# Routes that answer without signing in; every other API route requires it.
# The webhook is authenticated by LiveKit's signature, not by a user (see test_webhooks.py).
PUBLIC_ROUTES = {"api-token", "api-schema", "api-docs", "api-livekit-webhook"}
PLACEHOLDERS = {
    "int": 1,
    "slug": "some-slug",
    "string": "some-value",
    "path": "some/value",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def _flatten(patterns) -> list[URLPattern]:
    flat = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            flat.extend(_flatten(pattern.url_patterns))
        else:
            flat.append(pattern)
    return flat


def _placeholder(converter) -> object:
    return PLACEHOLDERS[type(converter).__name__.removesuffix("Converter").lower()]


def _protected_calls() -> list[tuple[str, str]]:
    calls = []
    for pattern in _flatten(api_patterns):
        if pattern.name in PUBLIC_ROUTES:
            continue
        kwargs = {name: _placeholder(c) for name, c in pattern.pattern.converters.items()}
        url = reverse(pattern.name, kwargs=kwargs)
        view_class = pattern.callback.view_class
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view_class, method):
                calls.append((method, url))
    return calls


@pytest.mark.django_db
def test_schema_answers_and_lists_the_endpoints():
    response = APIClient().get(reverse("api-schema"), {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Rooms API"
    for path in (
        "/api/me",
        "/api/auth/token",
        "/api/spaces",
        "/api/spaces/{slug}/members/{member_id}",
        "/api/invites/{token}/accept",
        "/api/sessions/{slug}/join",
        "/api/sessions/{slug}/end",
    ):
        assert path in schema["paths"], path


@pytest.mark.django_db
def test_schema_names_each_views_nested_serializers_apart():
    schema = APIClient().get(reverse("api-schema"), {"format": "json"}).json()

    components = set(schema["components"]["schemas"])
    assert {"SessionJoinOutput", "TokenCreateOutput", "SpaceOutput"} <= components
    assert not {"Input", "Output", "InputRequest"} & components


@pytest.mark.django_db
def test_api_docs_page_answers():
    response = APIClient().get(reverse("api-docs"))

    assert response.status_code == 200
    assert reverse("api-schema") in response.content.decode()


def test_every_api_route_is_covered_by_the_anonymous_check():
    calls = set(_protected_calls())

    assert {
        ("get", "/api/me"),
        ("post", "/api/spaces"),
        ("delete", "/api/spaces/some-slug/members/1"),
        ("post", "/api/invites/some-value/accept"),
        ("post", "/api/sessions/some-value/join"),
        ("post", "/api/sessions/some-value/end"),
        ("get", "/api/sessions/some-value/participants"),
    } <= calls


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), _protected_calls())
def test_anonymous_api_call_is_refused_not_an_error(method, url):
    response = getattr(APIClient(), method)(url, {}, format="json")

    assert response.status_code in (401, 403), response.content
    assert response.json()["code"] == "not_authenticated"
