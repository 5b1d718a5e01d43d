"""Catch me up: a short summary of the session so far (offline analyser or the fake LLM), with
links to its lines, computed at most once per 30 s per session and shared; API and card for
members only."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.core.cache import cache
from django.db import connections
from django.urls import reverse

from sessions_app import catch_up as catch_up_module
from sessions_app.analysis import offline
from sessions_app.catch_up import REFRESH_SECONDS, catch_up_for
from spaces.models import SpaceMember
from spaces.services import member_remove
from tests.fakes.llm import FakeLlm
from tests.sessions_app.analysis_support import store_lines

MEETING = [
    (0.0, 6.0, "u-ann", "Ann", "Welcome everybody, today we plan the spring marketing budget."),
    (7.0, 12.0, "u-bob", "Bob", "The marketing budget for spring is forty thousand euros."),
    (13.0, 19.0, "u-ann", "Ann", "We should move part of the budget to the video campaign."),
    (20.0, 26.0, "u-cem", "Cem", "The video campaign needs a new agency before April."),
    (27.0, 33.0, "u-bob", "Bob", "I will ask three agencies for offers by Friday."),
    (34.0, 40.0, "u-ann", "Ann", "Good, then we decide on the agency next week."),
    (41.0, 45.0, "u-cem", "Cem", "Okay."),
]


@pytest.fixture(autouse=True)
def _no_shared_summaries(video_session):
    """The cache (Redis in the suite) outlives a test: start and end without this session's
    summary or lock."""
    keys = [f"catch-up:{video_session.pk}", f"catch-up:{video_session.pk}:lock"]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


@pytest.fixture
def offline_provider(settings):
    settings.ANALYSIS_PROVIDER = "offline"


@pytest.fixture
def counted_summarise(monkeypatch):
    """Counts the offline analyser's summaries (and can slow them down)."""
    calls: list[float] = []
    real = offline.summarise
    delay = {"seconds": 0.0}

    def summarise(*args, **kwargs):
        calls.append(time.monotonic())
        time.sleep(delay["seconds"])
        return real(*args, **kwargs)

    monkeypatch.setattr(offline, "summarise", summarise)
    calls_delay = calls, delay
    return calls_delay


def _catch_up_reply(body):
    """Points citing the [seconds] of the lines that mention the budget and the agencies."""
    lines = [ln for ln in body["messages"][-1]["content"].splitlines() if ln.startswith("[")]
    points = []
    for line in lines:
        seconds, _, rest = line[1:].partition("] ")
        if "budget" in rest.lower() or "agencies" in rest:
            points.append({"text": f"Said: {rest.split(': ', 1)[1]}", "start": int(seconds)})
    return json.dumps({"points": points, "topics": ["budget", "agencies"]})


@pytest.fixture
def fake_llm(settings):
    with FakeLlm(api_key="sk-test", reply=_catch_up_reply) as fake:
        settings.LLM_BASE_URL = fake.base_url
        settings.LLM_API_KEY = "sk-test"
        settings.LLM_MODEL = "fake-model-1"
        settings.LLM_TIMEOUT_SECONDS = 1.0
        settings.LLM_MAX_PROMPT_CHARS = 24000
        settings.ANALYSIS_PROVIDER = "llm"
        yield fake


# --- The service ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_offline_summary_points_are_said_sentences_linked_to_their_lines(
    video_session, offline_provider
):
    store_lines(video_session, MEETING)

    result = catch_up_for(session=video_session)

    assert result.provider == "offline"
    assert result.segments == len(MEETING)
    assert result.up_to == 45.0
    assert result.note == ""
    assert result.language == "en"
    assert 1 <= len(result.points) <= catch_up_module.MAX_POINTS
    by_id = {f"a{i}": line for i, line in enumerate(MEETING)}
    for point in result.points:
        start, _end, _identity, speaker, text = by_id[point.utterance_id]
        # Each point is a sentence of the line it links to, said by that line's speaker.
        assert point.text.rstrip(".").lower() in text.lower()
        assert (point.start, point.speaker_name) == (start, speaker)
    assert [p.start for p in result.points] == sorted(p.start for p in result.points)
    assert "budget" in " ".join(result.topics)


@pytest.mark.django_db
def test_nothing_said_yet_answers_without_the_analyser_and_is_not_kept(
    video_session, offline_provider, counted_summarise
):
    calls, _ = counted_summarise
    first = catch_up_for(session=video_session)
    assert (first.provider, first.points, first.segments) == ("none", [], 0)

    # The first final is summarised at once, not 30 s later.
    store_lines(video_session, MEETING[:2])
    second = catch_up_for(session=video_session)
    assert second.provider == "offline"
    assert second.segments == 2
    assert len(calls) == 1


@pytest.mark.django_db
def test_two_calls_within_30_seconds_hit_the_analyser_once(
    video_session, offline_provider, counted_summarise
):
    calls, _ = counted_summarise
    store_lines(video_session, MEETING[:4])
    first = catch_up_for(session=video_session)
    # A new final within the 30 s does not make a new summary: everybody shares the first.
    store_lines_more(video_session, MEETING[4:])
    second = catch_up_for(session=video_session)

    assert len(calls) == 1
    assert second == first
    assert second.segments == 4
    assert REFRESH_SECONDS == 30


def store_lines_more(session, lines):
    """More finals in another run of the session (utterance ids after the first run's)."""
    from transcription.models import TranscriptionRun, TranscriptSegment

    run = TranscriptionRun.objects.create(
        session=session, mode="BROWSER", provider="local", status="STOPPED"
    )
    for n, (start, end, identity, name, text) in enumerate(lines):
        TranscriptSegment.objects.create(
            session=session, run=run, speaker_identity=identity, speaker_name=name,
            utterance_id=f"b{n}", text=text, language="en", start_offset=start, end_offset=end,
        )  # fmt: skip


@pytest.mark.django_db
def test_after_the_refresh_interval_the_summary_is_made_again_with_new_finals(
    video_session, offline_provider, counted_summarise, monkeypatch
):
    calls, _ = counted_summarise
    monkeypatch.setattr(catch_up_module, "REFRESH_SECONDS", 1)
    store_lines(video_session, MEETING[:4])
    assert catch_up_for(session=video_session).segments == 4
    store_lines_more(video_session, MEETING[4:])
    time.sleep(1.2)

    again = catch_up_for(session=video_session)

    assert again.segments == len(MEETING)
    assert len(calls) == 2


@pytest.mark.django_db(transaction=True)
def test_people_asking_at_once_share_one_computation(
    video_session, offline_provider, counted_summarise
):
    calls, delay = counted_summarise
    delay["seconds"] = 0.6
    store_lines(video_session, MEETING)
    results = []

    def ask():
        try:
            results.append(catch_up_for(session=video_session))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert len(results) == 4
    assert len(calls) == 1
    assert len({r.computed_at for r in results}) == 1


@pytest.mark.django_db
def test_llm_summary_cites_the_lines_it_names_and_is_asked_once_per_interval(
    video_session, fake_llm
):
    store_lines(video_session, MEETING)

    first = catch_up_for(session=video_session)
    second = catch_up_for(session=video_session)

    assert first.provider == "llm"
    assert second == first
    assert len(fake_llm.requests) == 1
    assert [p.utterance_id for p in first.points] == ["a0", "a1", "a2", "a4"]
    assert first.points[1].text == "Said: The marketing budget for spring is forty thousand euros."
    assert first.points[1].start == 7.0
    assert first.topics == ["budget", "agencies"]
    prompt = fake_llm.requests[0]["messages"]
    assert "[27] Bob: I will ask three agencies for offers by Friday." in prompt[1]["content"]
    assert "English" in prompt[0]["content"]


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["garbage", "wrong_shape", "timeout", "fail"])
def test_llm_failure_falls_back_to_the_offline_summary_with_a_note(video_session, fake_llm, mode):
    fake_llm.mode = mode
    fake_llm.delay = 2.0
    store_lines(video_session, MEETING)

    result = catch_up_for(session=video_session)

    assert result.provider == "offline"
    assert result.points
    assert result.note.startswith("The LLM could not summarise (")
    assert len(fake_llm.requests) == 1


@pytest.mark.django_db
def test_llm_points_naming_no_line_fall_back_to_offline(video_session, fake_llm):
    fake_llm.reply = lambda body: json.dumps({"points": [{"text": "Early", "start": -5}]})
    store_lines(video_session, MEETING)

    result = catch_up_for(session=video_session)

    assert result.provider == "offline"
    assert "names no transcript line" in result.note


@pytest.mark.django_db
def test_long_transcript_sends_the_latest_lines_under_the_cap(video_session, fake_llm, settings):
    settings.LLM_MAX_PROMPT_CHARS = 1500
    lines = [
        (i * 5.0, i * 5.0 + 4, "u-ann", "Ann", f"Budget line {i} about the spring campaign.")
        for i in range(200)
    ]
    store_lines(video_session, lines)

    result = catch_up_for(session=video_session)

    assert result.provider == "llm"
    (request,) = fake_llm.requests
    assert sum(len(m["content"]) for m in request["messages"]) <= 1500
    sent = request["messages"][1]["content"].splitlines()
    assert sent[-1] == "[995] Ann: Budget line 199 about the spring campaign."
    assert "[0] Ann" not in request["messages"][1]["content"]


# --- The API and the card ---------------------------------------------------------------------


@pytest.mark.django_db
def test_member_gets_the_summary_with_links_to_the_moments(
    video_session, member_api, offline_provider
):
    store_lines(video_session, MEETING)

    response = member_api.get(reverse("api-session-catch-up", args=[video_session.slug]))

    assert response.status_code == 200
    body = response.json()
    assert body["provider"] == "offline"
    assert body["refresh_seconds"] == 30
    assert body["segments"] == len(MEETING)
    page = reverse("sessions:detail", args=[video_session.slug])
    for point in body["points"]:
        assert point["url"] == f"{page}?t={int(point['start'])}"
        assert point["utterance_id"].startswith("a")


@pytest.mark.django_db
def test_owner_and_member_share_one_summary(
    video_session, owner_api, member_api, offline_provider, counted_summarise
):
    calls, _ = counted_summarise
    store_lines(video_session, MEETING)
    url = reverse("api-session-catch-up", args=[video_session.slug])

    a = owner_api.get(url).json()
    b = member_api.get(url).json()

    assert a == b
    assert len(calls) == 1


@pytest.mark.django_db
def test_outsider_unknown_session_and_anonymous_learn_nothing(
    video_session, outsider_api, member_api, offline_provider, counted_summarise
):
    calls, _ = counted_summarise
    store_lines(video_session, MEETING)
    url = reverse("api-session-catch-up", args=[video_session.slug])

    assert outsider_api.get(url).status_code == 404
    assert member_api.get(reverse("api-session-catch-up", args=["no-such-one"])).status_code == 404
    from rest_framework.test import APIClient

    assert APIClient().get(url).status_code in (401, 403)
    assert member_api.post(url).status_code == 405
    assert calls == []


@pytest.mark.django_db
def test_removed_member_gets_404(
    video_session, space, owner, member, member_api, member_client, offline_provider
):
    store_lines(video_session, MEETING)
    url = reverse("api-session-catch-up", args=[video_session.slug])
    assert member_api.get(url).status_code == 200

    member_remove(space=space, member=SpaceMember.objects.get(user=member), by=owner)

    assert member_api.get(url).status_code == 404
    card = reverse("sessions:catch-up", args=[video_session.slug])
    assert member_client.get(card).status_code == 404


@pytest.mark.django_db
def test_card_fragment_and_page_show_the_points_with_links(
    video_session, member_client, offline_provider
):
    store_lines(video_session, MEETING)
    url = reverse("sessions:catch-up", args=[video_session.slug])

    fragment = member_client.get(url, {"partial": "1"})
    page = member_client.get(url)

    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert html.lstrip().startswith('<section id="catch-up"')
    assert "<html" not in html and "<script" not in html
    assert 'data-utterance-id="a1"' in html or 'data-utterance-id="a0"' in html
    assert "?t=" in html
    assert "Shared by everyone here; made again at most every 30 seconds." in html
    assert page.status_code == 200
    assert "<html" in page.content.decode()
    assert "js/catch-up.js" in page.content.decode()


@pytest.mark.django_db
def test_card_says_when_nothing_has_been_said(video_session, member_client, offline_provider):
    response = member_client.get(
        reverse("sessions:catch-up", args=[video_session.slug]), {"partial": "1"}
    )
    assert "Nothing has been said yet" in response.content.decode()


@pytest.mark.django_db
def test_card_for_outsider_is_404_and_anonymous_is_sent_to_sign_in(
    video_session, outsider_client, client
):
    url = reverse("sessions:catch-up", args=[video_session.slug])
    assert outsider_client.get(url).status_code == 404
    response = client.get(url)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


@pytest.mark.django_db
def test_points_keep_the_meetings_language_for_a_reader_in_another(
    video_session, member_client, offline_provider
):
    store_lines(video_session, MEETING)
    response = member_client.get(
        reverse("sessions:catch-up", args=[video_session.slug]),
        {"partial": "1"},
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert response.status_code == 200
    assert 'lang="en"' in response.content.decode()
