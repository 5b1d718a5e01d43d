"""Sessions API: create, list, detail, participants; outsiders get 404 and see nothing."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from sessions_app.models import VideoSession
from spaces.models import Space
from spaces.services import space_create
from tests.factories import VideoSessionFactory

SLUG_RE = re.compile(r"^[a-hjkmnp-z2-9]{3}-[a-hjkmnp-z2-9]{4}-[a-hjkmnp-z2-9]{5}$")


def space_sessions_url(space: Space) -> str:
    return reverse("api-space-session-list", kwargs={"slug": space.slug})


def session_url(name: str, session: VideoSession) -> str:
    return reverse(name, kwargs={"slug": session.slug})


def test_member_creates_a_session_in_the_space(member_api, member, space):
    response = member_api.post(space_sessions_url(space), {"title": " Standup "}, format="json")

    assert response.status_code == 201
    body = response.json()
    session = VideoSession.objects.get(slug=body["slug"])
    assert session.space == space
    assert session.created_by == member
    assert body["title"] == "Standup"
    assert body["status"] == "CREATED"
    assert body["space"] == space.slug
    assert body["created_by"] == member.identity
    assert body["languages"] == ["en"]
    assert body["started_at"] is None


def test_session_slug_is_unguessable_and_unique(owner_api, space):
    slugs = {
        owner_api.post(space_sessions_url(space), {"title": f"S{i}"}, format="json").json()["slug"]
        for i in range(5)
    }

    assert len(slugs) == 5
    for slug in slugs:
        assert SLUG_RE.match(slug), slug
        assert len(slug.replace("-", "")) == 12


def test_session_can_be_created_with_chosen_languages(owner_api, space, settings):
    settings.STT_PROVIDER = "gladia"
    response = owner_api.post(
        space_sessions_url(space), {"title": "Réunion", "languages": ["fr", "en"]}, format="json"
    )

    assert response.status_code == 201
    assert VideoSession.objects.get(slug=response.json()["slug"]).languages == ["fr", "en"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": "ok", "languages": ["english"]},
        {"title": "ok", "languages": ["EN"]},
        {"title": "ok", "languages": ["en", "fr", "de", "es", "it", "pt"]},
    ],
)
def test_session_create_with_bad_input_is_400(owner_api, space, body):
    response = owner_api.post(space_sessions_url(space), body, format="json")

    assert response.status_code == 400
    assert not space.sessions.exists()


def test_outsider_cannot_create_a_session_in_someone_elses_space(outsider_api, space):
    response = outsider_api.post(space_sessions_url(space), {"title": "Sneaky"}, format="json")

    assert response.status_code == 404
    assert not space.sessions.exists()


def test_space_session_list_shows_that_spaces_sessions(member_api, space, video_session, outsider):
    other = space_create(owner=outsider, name="Elsewhere")
    VideoSessionFactory(space=other, created_by=outsider, title="Hidden")

    response = member_api.get(space_sessions_url(space))

    assert response.status_code == 200
    assert [s["slug"] for s in response.json()] == [video_session.slug]


def test_my_session_list_spans_my_spaces_only(member_api, member, space, video_session, outsider):
    other = space_create(owner=outsider, name="Elsewhere")
    hidden = VideoSessionFactory(space=other, created_by=outsider, title="Hidden")
    mine = space_create(owner=member, name="Member's own")
    own = VideoSessionFactory(space=mine, created_by=member, title="Own")

    response = member_api.get(reverse("api-session-list"))

    assert response.status_code == 200
    slugs = [s["slug"] for s in response.json()]
    assert sorted(slugs) == sorted([video_session.slug, own.slug])
    assert hidden.slug not in response.content.decode()
    assert "Hidden" not in response.content.decode()


def test_outsider_session_list_shows_nothing_of_others(outsider_api, video_session):
    response = outsider_api.get(reverse("api-session-list"))

    assert response.status_code == 200
    assert response.json() == []


def test_session_detail_for_a_member(member_api, video_session, owner):
    response = member_api.get(session_url("api-session-detail", video_session))

    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == video_session.slug
    assert body["title"] == "Weekly sync"
    assert body["created_by"] == owner.identity


def test_participant_list_shows_who_joined(owner_api, member_api, owner, member, video_session):
    owner_api.post(session_url("api-session-join", video_session))
    member_api.post(session_url("api-session-join", video_session))

    response = member_api.get(session_url("api-participant-list", video_session))

    assert response.status_code == 200
    assert [(p["identity"], p["role"]) for p in response.json()] == [
        (owner.identity, "HOST"),
        (member.identity, "GUEST"),
    ]


def test_unknown_session_is_404(member_api):
    assert member_api.get("/api/sessions/abc-defg-hjkmn").status_code == 404


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "api-session-detail"),
        ("post", "api-session-join"),
        ("post", "api-session-end"),
        ("get", "api-participant-list"),
    ],
)
def test_outsider_gets_404_on_session_api_and_learns_nothing(
    outsider_api, owner_api, video_session, method, name
):
    owner_api.post(session_url("api-session-join", video_session))

    response = getattr(outsider_api, method)(session_url(name, video_session))

    assert response.status_code == 404
    content = response.content.decode()
    assert "Weekly sync" not in content
    assert "Olivia" not in content
    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.LIVE
    assert video_session.participants.count() == 1


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "api-session-detail"),
        ("post", "api-session-join"),
        ("post", "api-session-end"),
        ("get", "api-participant-list"),
    ],
)
@pytest.mark.django_db
def test_anonymous_session_api_calls_are_refused(video_session, method, name):
    response = getattr(APIClient(), method)(session_url(name, video_session))

    assert response.status_code in (401, 403)
    assert "Weekly sync" not in response.content.decode()
    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.CREATED


def test_member_removed_from_the_space_loses_its_sessions(member_api, member, space, video_session):
    assert member_api.get(session_url("api-session-detail", video_session)).status_code == 200
    space.memberships.filter(user=member).delete()

    assert member_api.get(session_url("api-session-detail", video_session)).status_code == 404
    assert member_api.post(session_url("api-session-join", video_session)).status_code == 404
    assert member_api.get(reverse("api-session-list")).json() == []
