"""Transcription REST API: start, stop, status and the stored segments of a session.

Starting a run launches its runner after commit. Here the embedded runner is bound to a private
event loop in a background thread (``background_loop``), so the real pipeline with the local
engine runs while the sync test talks to the API; every test that starts a run stops it and
waits (bounded) for it to finish.
"""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from sessions_app.models import VideoSession
from tests.factories import VideoSessionFactory
from tests.transcription.conftest import wait_for_run
from transcription.models import TranscriptionRun, TranscriptionUsage, TranscriptSegment

S = TranscriptionRun.Status
live_db = pytest.mark.django_db(transaction=True)


def start_url(session: VideoSession) -> str:
    return f"/api/sessions/{session.slug}/transcription/start"


def stop_url(session: VideoSession) -> str:
    return f"/api/sessions/{session.slug}/transcription/stop"


def status_url(session: VideoSession) -> str:
    return f"/api/sessions/{session.slug}/transcription"


def segments_url(session: VideoSession) -> str:
    return f"/api/sessions/{session.slug}/segments"


@pytest.fixture(autouse=True)
def _browser_mode_with_the_local_engine(settings):
    settings.LIVEKIT_ENABLED = False
    settings.TRANSCRIPTION_MODE = "auto"
    settings.STT_PROVIDER = "local"


def _stop_and_wait(api: APIClient, session: VideoSession, run_id: int) -> TranscriptionRun:
    response = api.post(stop_url(session))
    assert response.status_code == 200, response.content
    assert response.json()["status"] in ("STOPPING", "STOPPED")
    return wait_for_run(run_id, lambda r: r.is_finished)


# --- start / status / stop with a real runner -----------------------------------------------


@live_db
def test_member_starts_a_browser_run_with_the_configured_provider(
    background_loop, member_api, member, video_session
):
    response = member_api.post(start_url(video_session))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] in ("STARTING", "ACTIVE")
    assert body["mode"] == "BROWSER"
    assert body["provider"] == "local"
    assert body["error"] is None
    assert body["error_code"] is None
    run = TranscriptionRun.objects.get(pk=body["run_id"])
    assert run.session == video_session
    assert run.started_by == member
    assert TranscriptionUsage.objects.get(run=run).user == member

    wait_for_run(run.pk, lambda r: r.status == S.ACTIVE)
    stopped = _stop_and_wait(member_api, video_session, run.pk)
    assert stopped.status == S.STOPPED


@live_db
def test_starting_twice_returns_the_same_run(background_loop, member_api, owner_api, video_session):
    first = member_api.post(start_url(video_session)).json()
    second = owner_api.post(start_url(video_session))

    assert second.status_code == 201
    assert second.json()["run_id"] == first["run_id"]
    assert TranscriptionRun.objects.filter(session=video_session).count() == 1
    assert TranscriptionUsage.objects.filter(session=video_session).count() == 1

    _stop_and_wait(member_api, video_session, first["run_id"])


@live_db
def test_status_follows_the_run_from_none_to_active_to_stopped(
    background_loop, member_api, video_session
):
    assert member_api.get(status_url(video_session)).json() == {
        "status": "NONE",
        "mode": None,
        "run_id": None,
        "provider": None,
        "error": None,
        "error_code": None,
    }
    run_id = member_api.post(start_url(video_session)).json()["run_id"]
    wait_for_run(run_id, lambda r: r.status == S.ACTIVE)

    active = member_api.get(status_url(video_session))

    assert active.status_code == 200
    assert active.json() == {
        "status": "ACTIVE",
        "mode": "BROWSER",
        "run_id": run_id,
        "provider": "local",
        "error": None,
        "error_code": None,
    }

    _stop_and_wait(member_api, video_session, run_id)
    stopped = member_api.get(status_url(video_session)).json()
    assert (stopped["status"], stopped["run_id"]) == ("STOPPED", run_id)


@live_db
def test_stop_finishes_the_run_and_closes_its_meter(background_loop, member_api, video_session):
    run_id = member_api.post(start_url(video_session)).json()["run_id"]
    wait_for_run(run_id, lambda r: r.status == S.ACTIVE)
    # ACTIVE is written before the first tick: give the pipeline time to send (and meter)
    # some audio, or a stop in the same instant rightly meters nothing.
    time.sleep(1.0)

    run = _stop_and_wait(member_api, video_session, run_id)

    assert run.status == S.STOPPED
    assert run.ended_at is not None
    usage = TranscriptionUsage.objects.get(run=run)
    assert usage.finalized
    assert usage.duration_seconds > 0, "the pipeline metered the audio it sent"
    assert usage.billed_minutes == 1


@live_db
def test_stop_right_after_start_never_leaves_a_run_unfinished(
    background_loop, member_api, video_session
):
    run_id = member_api.post(start_url(video_session)).json()["run_id"]

    run = _stop_and_wait(member_api, video_session, run_id)

    assert run.status == S.STOPPED
    assert TranscriptionUsage.objects.get(run=run).finalized


@live_db
def test_a_new_start_after_a_stop_makes_a_new_run(background_loop, member_api, video_session):
    first = member_api.post(start_url(video_session)).json()["run_id"]
    _stop_and_wait(member_api, video_session, first)

    second = member_api.post(start_url(video_session))

    assert second.status_code == 201
    assert second.json()["run_id"] != first
    _stop_and_wait(member_api, video_session, second.json()["run_id"])


# --- without a runner -----------------------------------------------------------------------


@pytest.mark.django_db
def test_stop_with_nothing_running_answers_none_and_creates_nothing(member_api, video_session):
    response = member_api.post(stop_url(video_session))

    assert response.status_code == 200
    assert response.json()["status"] == "NONE"
    assert not TranscriptionRun.objects.exists()


@pytest.mark.django_db
def test_stop_after_the_run_ended_reports_the_last_run(member_api, video_session):
    run = TranscriptionRun.objects.create(
        session=video_session,
        mode="BROWSER",
        provider="local",
        status=S.FAILED,
        error_code="auth",
        error="Gladia rejected the API key",
    )

    body = member_api.post(stop_url(video_session)).json()

    assert (body["status"], body["run_id"]) == ("FAILED", run.pk)
    assert (body["error_code"], body["error"]) == ("auth", "Gladia rejected the API key")


@pytest.mark.django_db
def test_an_unknown_mode_is_a_400(member_api, video_session):
    response = member_api.post(start_url(video_session), {"mode": "TELEPATHY"}, format="json")

    assert response.status_code == 400
    assert not TranscriptionRun.objects.exists()


@pytest.mark.django_db
def test_start_on_an_ended_session_is_409_session_ended(owner_api, member_api, video_session):
    assert owner_api.post(f"/api/sessions/{video_session.slug}/end").status_code in (200, 204)

    response = member_api.post(start_url(video_session))

    assert response.status_code == 409
    assert response.json()["code"] == "session_ended"
    assert not TranscriptionRun.objects.exists()


# --- access -----------------------------------------------------------------------------------


ENDPOINTS = [
    ("post", start_url),
    ("post", stop_url),
    ("get", status_url),
    ("get", segments_url),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), ENDPOINTS, ids=["start", "stop", "status", "segs"])
def test_outsider_gets_404_and_changes_nothing(outsider_api, video_session, method, url):
    run = TranscriptionRun.objects.create(
        session=video_session, mode="BROWSER", provider="local", status=S.ACTIVE
    )
    TranscriptSegment.objects.create(
        session=video_session,
        run=run,
        utterance_id="u",
        text="secret",
        start_offset=0,
        end_offset=1,
    )

    response = getattr(outsider_api, method)(url(video_session))

    assert response.status_code == 404
    assert "secret" not in response.content.decode()
    assert str(run.pk) not in response.content.decode()
    run.refresh_from_db()
    assert run.status == S.ACTIVE
    assert TranscriptionRun.objects.count() == 1


@pytest.mark.django_db
def test_outsider_cannot_start_a_run(outsider_api, video_session):
    response = outsider_api.post(start_url(video_session))

    assert response.status_code == 404
    assert not TranscriptionRun.objects.exists()
    assert not TranscriptionUsage.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), ENDPOINTS, ids=["start", "stop", "status", "segs"])
def test_unknown_session_is_404(member_api, method, url):
    missing = VideoSession(slug="no-such-session")
    assert getattr(member_api, method)(url(missing)).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), ENDPOINTS, ids=["start", "stop", "status", "segs"])
def test_anonymous_is_refused(video_session, method, url):
    response = getattr(APIClient(), method)(url(video_session))

    assert response.status_code in (401, 403)
    assert not TranscriptionRun.objects.exists()


# --- segments ---------------------------------------------------------------------------------


def _segments(session: VideoSession, starts: list[float]) -> TranscriptionRun:
    run = TranscriptionRun.objects.create(
        session=session, mode="BROWSER", provider="local", status=S.STOPPED
    )
    for i, start in enumerate(starts):
        TranscriptSegment.objects.create(
            session=session,
            run=run,
            utterance_id=f"u-{start}",
            text=f"words number {i}",
            language="en",
            start_offset=start,
            end_offset=start + 1.5,
        )
    return run


@pytest.mark.django_db
def test_segments_are_paginated_oldest_first(member_api, video_session):
    _segments(video_session, [8.0, 2.0, 6.0, 0.5, 4.0])

    first = member_api.get(segments_url(video_session), {"limit": 2}).json()

    assert first["count"] == 5
    assert [s["start"] for s in first["results"]] == [0.5, 2.0]
    assert first["previous"] is None
    assert first["next"]
    second = member_api.get(first["next"]).json()
    assert [s["start"] for s in second["results"]] == [4.0, 6.0]
    last = member_api.get(segments_url(video_session), {"limit": 2, "offset": 4}).json()
    assert [s["start"] for s in last["results"]] == [8.0]
    assert last["next"] is None


@pytest.mark.django_db
def test_a_segment_has_the_protocol_fields(member_api, owner, video_session):
    run = _segments(video_session, [])
    TranscriptSegment.objects.create(
        session=video_session,
        run=run,
        speaker_identity=owner.identity,
        speaker_name=owner.name,
        utterance_id="u-1",
        text="it was the best of times",
        language="en",
        start_offset=1.23456,
        end_offset=3.5,
    )

    body = member_api.get(segments_url(video_session)).json()

    assert body["results"] == [
        {
            "utterance_id": "u-1",
            "text": "it was the best of times",
            "speaker_identity": owner.identity,
            "speaker_name": owner.name,
            "start": 1.235,
            "end": 3.5,
            "language": "en",
            "is_final": True,
        }
    ]


@pytest.mark.django_db
def test_segments_are_only_the_sessions_own(member_api, space, owner, video_session):
    _segments(video_session, [1.0])
    _segments(VideoSessionFactory(space=space, created_by=owner), [2.0, 3.0])

    body = member_api.get(segments_url(video_session)).json()

    assert body["count"] == 1
    assert [s["start"] for s in body["results"]] == [1.0]


@pytest.mark.django_db
def test_segments_of_a_session_without_transcript_are_an_empty_page(member_api, video_session):
    body = member_api.get(segments_url(video_session)).json()
    assert (body["count"], body["results"]) == (0, [])
