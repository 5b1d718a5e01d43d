"""``GET /api/search``: the caller's spaces only, documented answers for every input."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from spaces.models import SpaceMember
from spaces.services import member_remove, space_create
from tests.transcription.test_search import meeting, say, translate
from transcription.search import postgres

pytestmark = pytest.mark.django_db

URL = "/api/search"


@pytest.fixture
def secret(space):
    session = meeting(space, title="SECRET-TITLE")
    [segment] = say(session, [(61.5, "Ada", "The SECRET-WORD budget for hiring.", "en")])
    translate(segment, "ru", "Бюджет на найм.")
    return session


def test_a_member_finds_the_finals_of_their_spaces(member_api, space, secret):
    response = member_api.get(URL, {"q": "budget"})

    assert response.status_code == 200
    body = response.json()
    assert (body["query"], body["total"], body["page"], body["pages"]) == ("budget", 1, 1, 1)
    assert body["capped"] is False and body["per_page"] == 20
    [hit] = body["results"]
    assert hit["session_slug"] == secret.slug and hit["session_title"] == "SECRET-TITLE"
    assert (hit["space_slug"], hit["space_name"]) == (space.slug, space.name)
    assert (hit["start"], hit["end"], hit["speaker_name"], hit["language"]) == (
        61.5,
        63.5,
        "Ada",
        "en",
    )
    assert hit["text"] == "The SECRET-WORD budget for hiring." and hit["translated"] is False
    assert "<mark>budget</mark>" in hit["snippet"]
    assert hit["url"] == f"/sessions/{secret.slug}/?q=budget&t=62"
    assert hit["rank"] > 0 and "segment_id" in hit


def test_filters_and_translations(member_api, space, secret):
    found = member_api.get(URL, {"q": "бюджет", "language": "ru", "space": space.slug}).json()
    assert found["total"] == 1 and found["results"][0]["translated"] is True
    assert member_api.get(URL, {"q": "budget", "speaker": "bo"}).json()["total"] == 0
    assert member_api.get(URL, {"q": "budget", "session": secret.slug}).json()["total"] == 1
    assert member_api.get(URL, {"q": "budget", "from": "2030-01-01"}).json()["total"] == 0
    assert member_api.get(URL, {"q": "budget", "to": "2030-01-01"}).json()["total"] == 1


def test_an_outsider_finds_nothing_and_cannot_name_the_space_or_session(
    outsider_api, space, secret
):
    response = outsider_api.get(URL, {"q": "budget hiring"})
    assert response.status_code == 200
    assert response.json()["total"] == 0 and response.json()["results"] == []
    assert "SECRET" not in response.content.decode()

    for params in ({"space": space.slug}, {"session": secret.slug}):
        refused = outsider_api.get(URL, {"q": "budget", **params})
        assert refused.status_code == 404
        assert refused.json()["code"] == "not_found"
        assert "SECRET" not in refused.content.decode()


def test_a_removed_member_finds_nothing(member_api, owner, member, space, secret):
    assert member_api.get(URL, {"q": "budget"}).json()["total"] == 1
    member_remove(space=space, member=SpaceMember.objects.get(space=space, user=member), by=owner)

    assert member_api.get(URL, {"q": "budget"}).json()["total"] == 0
    assert member_api.get(URL, {"q": "budget", "space": space.slug}).status_code == 404
    assert member_api.get(URL, {"q": "budget", "session": secret.slug}).status_code == 404


def test_the_outsiders_own_space_is_searched_only_for_them(
    outsider, outsider_api, member_api, secret
):
    theirs = space_create(owner=outsider, name="Theirs")
    say(meeting(theirs, title="Their meeting", by=outsider), [(1, "O", "Their budget.", "en")])

    assert [h["text"] for h in outsider_api.get(URL, {"q": "budget"}).json()["results"]] == [
        "Their budget."
    ]
    assert member_api.get(URL, {"q": "budget", "space": theirs.slug}).status_code == 404


def test_signing_in_is_required(space, secret):
    response = APIClient().get(URL, {"q": "budget"})
    assert response.status_code == 401
    assert "SECRET" not in response.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 201},
        {"q": "budget", "from": "yesterday"},
        {"q": "budget", "from": "2026-10-05", "to": "2026-10-01"},
        {"q": "budget", "language": "xx"},
        {"q": "budget", "page": "0"},
        {"q": "budget", "page": "abc"},
        {"q": "budget", "page": "9" * 5000},
        {"q": "budget", "page": "1001"},
        {"q": "budget", "per_page": "0"},
        {"q": "budget", "per_page": "51"},
        {"q": "budget", "space": "not a slug!"},
        {"q": "budget", "session": "s" * 33},
    ],
)
def test_malformed_input_answers_400(member_api, secret, params):
    response = member_api.get(URL, params)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"


def test_unknown_space_or_session_answers_404(member_api, secret):
    assert member_api.get(URL, {"q": "budget", "space": "no-such-space"}).status_code == 404
    assert member_api.get(URL, {"q": "budget", "session": "no-such-session"}).status_code == 404


def test_odd_queries_answer_200(member_api, secret):
    for query in ("-budget", '"', "or", "!!! & | <->", "'", "\\", "budget:*", "a" * 200):
        response = member_api.get(URL, {"q": query})
        assert response.status_code == 200, (query, response.content)
    past = member_api.get(URL, {"q": "budget", "page": "7"}).json()
    assert past["results"] == [] and past["total"] == 1 and past["page"] == 7


def test_a_search_that_runs_too_long_answers_503(member_api, secret, monkeypatch):
    original = postgres.tsqueries

    def slow(cursor, query):
        cursor.execute("SELECT pg_sleep(0.2)")
        return original(cursor, query)

    monkeypatch.setattr(postgres, "STATEMENT_TIMEOUT_MS", 20)
    monkeypatch.setattr(postgres, "tsqueries", slow)
    response = member_api.get(URL, {"q": "budget"})
    assert response.status_code == 503
    assert response.json()["code"] == "search_too_slow"


def test_the_operation_is_documented(member_api):
    schema = member_api.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/search"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {
        "q",
        "space",
        "session",
        "speaker",
        "from",
        "to",
        "language",
        "page",
        "per_page",
    } <= names
    assert {"200", "400", "401", "403", "503"} <= set(operation["responses"])
