"""``POST /api/spaces/<slug>/ask`` and the question box's form (``/spaces/<slug>/ask/``):
answers, members only (outsider, removed member, unknown space, another space's session),
malformed input (400, never 500), the rate limit shared by both, nothing stored."""

from __future__ import annotations

import json
import time

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from spaces.models import SpaceMember
from spaces.services import member_remove
from tests.fakes.llm import FakeLlm
from tests.sessions_app.test_ask import cite_budget, make_meetings


@pytest.fixture
def meetings(space, owner, member, outsider):
    return make_meetings(space, owner, member, outsider)


@pytest.fixture
def fake_llm(settings):
    with FakeLlm(api_key="sk-test", reply=cite_budget) as fake:
        settings.LLM_BASE_URL = fake.base_url
        settings.LLM_API_KEY = "sk-test"
        settings.LLM_MODEL = "fake-model-1"
        settings.LLM_ENABLED = True
        settings.LLM_TIMEOUT_SECONDS = 1.0
        yield fake


@pytest.fixture
def no_llm(settings):
    settings.LLM_ENABLED = False


@pytest.fixture
def rates(settings):
    def set_rates(**per_minute: int) -> None:
        framework = dict(settings.REST_FRAMEWORK)
        framework["DEFAULT_THROTTLE_RATES"] = {
            **framework["DEFAULT_THROTTLE_RATES"],
            **{scope: f"{n}/min" for scope, n in per_minute.items()},
        }
        settings.REST_FRAMEWORK = framework

    return set_rates


def _away_from_a_window_edge(seconds: float = 5.0) -> None:
    into = time.time() % 60
    if into > 60 - seconds:
        time.sleep(60 - into + 0.05)


def _url(space) -> str:
    return reverse("api-space-ask", args=[space.slug])


# --- API --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_member_gets_an_answer_citing_passages_that_link_to_the_moments(
    meetings, space, member_api, fake_llm
):
    response = member_api.post(
        _url(space), {"question": "What did we decide about the marketing budget?"}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "llm"
    assert body["found"] is True
    assert body["note"] == ""
    assert body["answer"][0]["text"] == "The marketing budget was raised to 50,000."
    numbers = {p["number"]: p for p in body["passages"]}
    cited = numbers[body["answer"][0]["passages"][0]]
    assert cited["session"] == meetings["review"].slug
    assert cited["session_title"] == "Budget review"
    assert cited["url"].startswith(f"/sessions/{meetings['review'].slug}/?")
    assert [line["is_hit"] for line in cited["context"]].count(True) == 1
    assert "<mark>" in cited["snippet"]


@pytest.mark.django_db
def test_without_an_llm_the_answer_is_extractive(meetings, space, member_api, no_llm):
    body = member_api.post(_url(space), {"question": "budget"}, format="json").json()

    assert body["mode"] == "extractive"
    assert body["answer"] == []
    assert body["passages"]
    assert all("Falcon" not in p["text"] for p in body["passages"])


@pytest.mark.django_db
def test_nothing_found_says_so(meetings, space, member_api, fake_llm):
    body = member_api.post(_url(space), {"question": "kangaroo migration"}, format="json").json()

    assert (body["mode"], body["found"], body["passages"]) == ("not_found", False, [])
    assert fake_llm.requests == []


@pytest.mark.django_db
def test_a_session_of_the_space_narrows_the_question(meetings, space, member_api, fake_llm):
    response = member_api.post(
        _url(space),
        {"question": "budget", "session": meetings["hiring"].slug},
        format="json",
    )

    assert response.status_code == 200
    assert {p["session"] for p in response.json()["passages"]} <= {meetings["hiring"].slug}
    assert "marketing" not in json.dumps(fake_llm.requests)


@pytest.mark.django_db
def test_outsider_unknown_space_and_anonymous_get_no_answer(
    meetings, space, outsider_api, member_api, fake_llm
):
    question = {"question": "budget"}
    assert outsider_api.post(_url(space), question, format="json").status_code == 404
    unknown = reverse("api-space-ask", args=["no-such-space"])
    assert member_api.post(unknown, question, format="json").status_code == 404
    assert APIClient().post(_url(space), question, format="json").status_code in (401, 403)
    assert member_api.get(_url(space)).status_code == 405
    assert fake_llm.requests == []


@pytest.mark.django_db
def test_outsider_cannot_ask_their_own_space_about_a_session_of_another(
    meetings, space, outsider_api, member_api, fake_llm
):
    theirs = meetings["theirs"]
    # Their own space, a session they may not read: 404, and nothing reaches the LLM.
    response = outsider_api.post(
        _url(theirs), {"question": "budget", "session": meetings["review"].slug}, format="json"
    )
    assert response.status_code == 404
    # A member asking this space about a session of another space they are in: 404 too.
    falcon = meetings["second"].sessions.get()
    response = member_api.post(
        _url(space), {"question": "budget", "session": falcon.slug}, format="json"
    )
    assert response.status_code == 404
    assert fake_llm.requests == []


@pytest.mark.django_db
def test_removed_member_gets_404(meetings, space, owner, member, member_api, fake_llm):
    question = {"question": "budget"}
    assert member_api.post(_url(space), question, format="json").status_code == 200
    asked = len(fake_llm.requests)

    member_remove(space=space, member=SpaceMember.objects.get(space=space, user=member), by=owner)

    assert member_api.post(_url(space), question, format="json").status_code == 404
    assert len(fake_llm.requests) == asked


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"question": ""},
        {"question": "   "},
        {"question": "x" * 501},
        {"question": ["budget"]},
        {"question": {"a": 1}},
        {"question": None},
        {"question": "budget\x00"},
        {"question": "budget", "session": "x" * 33},
        {"question": "budget", "session": ["a"]},
    ],
)
def test_malformed_input_is_400(meetings, space, member_api, fake_llm, body):
    response = member_api.post(_url(space), body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert fake_llm.requests == []


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_400_and_an_unknown_session_404(
    meetings, space, member_api, no_llm
):
    response = member_api.generic("POST", _url(space), "{not json", content_type="application/json")
    assert response.status_code == 400
    response = member_api.post(
        _url(space), {"question": "budget", "session": "nope"}, format="json"
    )
    assert response.status_code == 404


@pytest.mark.django_db
def test_questions_are_rate_limited_like_other_expensive_calls(
    meetings, space, member_api, owner_api, no_llm, rates
):
    rates(create=3)
    _away_from_a_window_edge()
    for _ in range(3):
        assert (
            member_api.post(_url(space), {"question": "budget"}, format="json").status_code == 200
        )
    response = member_api.post(_url(space), {"question": "budget"}, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Per person: the owner still asks.
    assert owner_api.post(_url(space), {"question": "budget"}, format="json").status_code == 200


# --- The form ---------------------------------------------------------------------------------


def _form_url(space) -> str:
    return reverse("space-ask", args=[space.slug])


@pytest.mark.django_db
def test_form_without_javascript_answers_on_a_page_of_its_own(
    meetings, space, member_client, fake_llm
):
    response = member_client.post(
        _form_url(space), {"question": "What did we decide about the marketing budget?"}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert "The marketing budget was raised to 50,000." in html
    assert 'class="cite" href="/sessions/' in html
    assert "Written by the LLM from the passages below only." in html
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_form_partial_is_the_box_alone_with_the_extractive_answer_labelled(
    meetings, space, member_client, no_llm
):
    response = member_client.post(_form_url(space), {"question": "budget", "partial": "1"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "<script" not in html
    assert '<section id="ask"' in html
    assert 'data-mode="extractive"' in html
    assert "Not a written answer" in html
    assert "<mark>" in html
    assert "Falcon" not in html


@pytest.mark.django_db
def test_form_says_when_nothing_is_found(meetings, space, member_client, no_llm):
    response = member_client.post(_form_url(space), {"question": "kangaroo", "partial": "1"})
    assert "I could not find this in your meetings." in response.content.decode()


@pytest.mark.django_db
def test_form_on_the_finished_page_asks_about_its_session_or_the_whole_space(
    meetings, space, member_client, fake_llm
):
    hiring = meetings["hiring"].slug
    one = member_client.post(
        _form_url(space), {"question": "budget", "session": hiring, "scope": "session"}
    )
    assert one.status_code == 200
    assert "marketing budget" not in json.dumps(fake_llm.requests)
    assert 'value="session" checked' in one.content.decode()

    every = member_client.post(
        _form_url(space), {"question": "budget", "session": hiring, "scope": "space"}
    )
    assert every.status_code == 200
    assert "marketing budget" in json.dumps(fake_llm.requests[-1])
    assert 'value="space" checked' in every.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("question", ["", "   ", "x" * 501])
def test_form_with_a_bad_question_is_400_with_a_message(
    meetings, space, member_client, fake_llm, question
):
    response = member_client.post(_form_url(space), {"question": question, "partial": "1"})
    assert response.status_code == 400
    assert "Write a question of at most 500 characters." in response.content.decode()
    assert fake_llm.requests == []


@pytest.mark.django_db
def test_form_for_outsiders_and_removed_members_is_404(
    meetings, space, owner, member, outsider_client, member_client, client, no_llm
):
    assert outsider_client.post(_form_url(space), {"question": "budget"}).status_code == 404
    assert outsider_client.get(_form_url(space)).status_code == 404
    response = member_client.post(
        _form_url(space), {"question": "budget", "session": meetings["theirs"].slug}
    )
    assert response.status_code == 404
    anonymous = client.post(_form_url(space), {"question": "budget"})
    assert anonymous.status_code == 302
    member_remove(space=space, member=SpaceMember.objects.get(space=space, user=member), by=owner)
    assert member_client.post(_form_url(space), {"question": "budget"}).status_code == 404


@pytest.mark.django_db
def test_form_page_shows_the_empty_box(meetings, space, member_client):
    response = member_client.get(_form_url(space))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="ask-question"' in html
    assert "js/ask.js" in html
    assert "Questions and answers are not saved." in html


@pytest.mark.django_db
def test_form_and_api_share_the_rate_limit(
    meetings, space, member_api, member_client, no_llm, rates
):
    rates(create=2)
    _away_from_a_window_edge()
    assert member_api.post(_url(space), {"question": "budget"}, format="json").status_code == 200
    assert member_client.post(_form_url(space), {"question": "budget"}).status_code == 200

    refused = member_client.post(_form_url(space), {"question": "budget", "partial": "1"})

    assert refused.status_code == 429
    assert "You asked many questions in a short time." in refused.content.decode()
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert member_api.post(_url(space), {"question": "budget"}, format="json").status_code == 429
