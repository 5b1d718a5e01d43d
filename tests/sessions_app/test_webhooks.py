"""LiveKit webhooks: signed like LiveKit signs them, verified over the raw body."""

from __future__ import annotations

import base64
import hashlib

import pytest
from google.protobuf.json_format import MessageToJson
from livekit import api

from sessions_app.models import Participant, VideoSession
from transcription.models import TranscriptionRun, TranscriptionUsage

KEY, SECRET = "lk-test-key", "lk-test-secret-0123456789abcdef0123456789"
URL = "/api/livekit/webhook"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def livekit(settings):
    settings.LIVEKIT_ENABLED = True
    settings.LIVEKIT_URL = "ws://127.0.0.1:7880"
    settings.LIVEKIT_API_KEY = KEY
    settings.LIVEKIT_API_SECRET = SECRET


def _sign(body: str, secret: str = SECRET) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return api.AccessToken(KEY, secret).with_sha256(digest).to_jwt()


def _post(client, event: api.WebhookEvent, *, auth: str | None = None, body: str | None = None):
    body = body if body is not None else MessageToJson(event)
    headers = (
        {} if auth == "" else {"HTTP_AUTHORIZATION": auth if auth is not None else _sign(body)}
    )
    return client.post(URL, data=body, content_type="application/webhook+json", **headers)


def _joined(session: VideoSession, user) -> api.WebhookEvent:
    return api.WebhookEvent(
        event="participant_joined",
        room=api.Room(name=session.slug),
        participant=api.ParticipantInfo(identity=user.identity, name=user.name),
    )


def test_participant_joined_makes_the_session_live_and_records_the_participant(
    client, video_session, member
):
    response = _post(client, _joined(video_session, member))

    assert response.status_code == 200
    video_session.refresh_from_db()
    assert video_session.status == "LIVE"
    assert video_session.started_at is not None
    participant = Participant.objects.get(session=video_session, identity=member.identity)
    assert participant.role == "GUEST"


def test_the_same_event_delivered_twice_changes_nothing_more(client, video_session, member):
    event = _joined(video_session, member)
    _post(client, event)
    _post(client, event)

    assert Participant.objects.filter(session=video_session).count() == 1


def test_participant_left_stamps_left_at(client, video_session, member):
    _post(client, _joined(video_session, member))
    left = api.WebhookEvent(
        event="participant_left",
        room=api.Room(name=video_session.slug),
        participant=api.ParticipantInfo(identity=member.identity),
    )

    assert _post(client, left).status_code == 200
    assert Participant.objects.get(session=video_session).left_at is not None


def test_unsigned_webhook_gets_401_and_changes_nothing(client, video_session, member):
    response = _post(client, _joined(video_session, member), auth="")

    assert response.status_code == 401
    video_session.refresh_from_db()
    assert video_session.status == "CREATED"
    assert not Participant.objects.exists()


def test_tampered_body_gets_401(client, video_session, member, outsider):
    original = MessageToJson(_joined(video_session, member))
    tampered = original.replace(member.identity, outsider.identity)

    response = _post(client, api.WebhookEvent(), auth=_sign(original), body=tampered)

    assert response.status_code == 401
    assert not Participant.objects.exists()


def test_signature_with_the_wrong_secret_gets_401(client, video_session, member):
    body = MessageToJson(_joined(video_session, member))

    response = _post(client, api.WebhookEvent(), auth=_sign(body, secret="x" * 40), body=body)

    assert response.status_code == 401


def test_bearer_prefixed_or_garbage_authorization_gets_401(client, video_session, member):
    body = MessageToJson(_joined(video_session, member))
    for auth in (f"Bearer {_sign(body)}", "garbage", "a.b.c"):
        assert _post(client, api.WebhookEvent(), auth=auth, body=body).status_code == 401


def test_signed_garbage_body_gets_401_not_500(client):
    body = "{not json"
    assert _post(client, api.WebhookEvent(), auth=_sign(body), body=body).status_code == 401


def test_unknown_events_are_accepted_and_ignored(client, video_session):
    event = api.WebhookEvent(event="track_published", room=api.Room(name=video_session.slug))

    assert _post(client, event).status_code == 200
    video_session.refresh_from_db()
    assert video_session.status == "CREATED"


def test_events_for_unknown_rooms_are_ignored(client, member):
    event = api.WebhookEvent(
        event="participant_joined",
        room=api.Room(name="no-such-room"),
        participant=api.ParticipantInfo(identity=member.identity),
    )

    assert _post(client, event).status_code == 200
    assert not Participant.objects.exists()


def test_webhook_is_404_when_livekit_is_not_configured(client, settings, video_session, member):
    settings.LIVEKIT_ENABLED = False

    assert _post(client, _joined(video_session, member)).status_code == 404


def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405


def _run_with_egress(session: VideoSession, status: str = "ACTIVE") -> TranscriptionRun:
    run = TranscriptionRun.objects.create(
        session=session, mode="SERVER", provider="local", status=status, egress_id="EG_test1"
    )
    TranscriptionUsage.objects.create(session=session, run=run, provider="local")
    return run


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (api.EgressStatus.EGRESS_FAILED, "LiveKit egress failed"),
        (api.EgressStatus.EGRESS_ABORTED, "LiveKit egress was aborted"),
        (api.EgressStatus.EGRESS_LIMIT_REACHED, "LiveKit egress reached its limit"),
    ],
)
def test_failed_egress_ends_a_starting_run_as_failed_with_the_reason(
    client, video_session, status, reason
):
    run = _run_with_egress(video_session, status="STARTING")
    event = api.WebhookEvent(
        event="egress_ended",
        egress_info=api.EgressInfo(egress_id="EG_test1", status=status, error="rtmp refused"),
    )

    assert _post(client, event).status_code == 200
    run.refresh_from_db()
    assert run.status == "FAILED"
    assert run.error_code == "egress"
    assert run.error.startswith(reason) and "rtmp refused" in run.error
    assert run.usage.finalized
    # A failed egress never blocks the next start.
    assert not TranscriptionRun.objects.filter(
        session=video_session, status__in=TranscriptionRun.UNFINISHED
    ).exists()


def test_failed_egress_asks_an_active_run_to_stop_and_it_will_end_failed(client, video_session):
    run = _run_with_egress(video_session, status="ACTIVE")
    event = api.WebhookEvent(
        event="egress_ended",
        egress_info=api.EgressInfo(egress_id="EG_test1", status=api.EgressStatus.EGRESS_FAILED),
    )
    _post(client, event)

    run.refresh_from_db()
    assert run.status == "STOPPING"
    assert run.error_code == "egress"
    from transcription.live.store import run_finish

    assert run_finish(run_id=run.pk, control_channel=run.control_channel).status == "FAILED"


def test_completed_egress_stops_the_run(client, video_session):
    run = _run_with_egress(video_session, status="STARTING")
    event = api.WebhookEvent(
        event="egress_ended",
        egress_info=api.EgressInfo(egress_id="EG_test1", status=api.EgressStatus.EGRESS_COMPLETE),
    )
    _post(client, event)

    run.refresh_from_db()
    assert run.status == "STOPPED"
    assert run.egress_status == "EGRESS_COMPLETE"


def test_room_finished_stops_the_sessions_runs(client, video_session):
    run = _run_with_egress(video_session, status="STARTING")
    event = api.WebhookEvent(event="room_finished", room=api.Room(name=video_session.slug))

    _post(client, event)

    run.refresh_from_db()
    assert run.is_finished


def _room_finished(session: VideoSession) -> api.WebhookEvent:
    return api.WebhookEvent(event="room_finished", room=api.Room(name=session.slug))


def test_room_finished_ends_the_session_like_the_hosts_button(
    client, video_session, member, django_capture_on_commit_callbacks
):
    """LiveKit closed the room (everybody left): the session ends, whoever is still marked
    present leaves, its runs stop, and its analysis starts — as from "End session"."""
    from sessions_app.models import SessionAnalysis

    _post(client, _joined(video_session, member))
    run = _run_with_egress(video_session, status="ACTIVE")

    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(client, _room_finished(video_session))

    assert response.status_code == 200
    video_session.refresh_from_db()
    assert video_session.status == "ENDED"
    assert video_session.ended_at is not None
    participant = Participant.objects.get(session=video_session, identity=member.identity)
    assert participant.left_at is not None
    run.refresh_from_db()
    assert run.status in ("STOPPING", "STOPPED")
    assert SessionAnalysis.objects.filter(session=video_session).exists()
    assert callbacks, "the end is announced and the analysis launched after the commit"


def test_room_finished_after_the_host_ended_the_session_changes_nothing(
    client, video_session, owner
):
    from sessions_app.models import SessionAnalysis
    from sessions_app.services import session_end

    session_end(session=video_session, by=owner)
    video_session.refresh_from_db()
    ended_at = video_session.ended_at
    requested = SessionAnalysis.objects.get(session=video_session).created_at

    for _ in range(2):  # LiveKit may deliver it twice
        assert _post(client, _room_finished(video_session)).status_code == 200

    video_session.refresh_from_db()
    assert video_session.status == "ENDED"
    assert video_session.ended_at == ended_at
    assert SessionAnalysis.objects.get(session=video_session).created_at == requested


def test_the_hosts_button_after_room_finished_changes_nothing(client, video_session, owner):
    from sessions_app.services import session_end

    _post(client, _room_finished(video_session))
    video_session.refresh_from_db()
    ended_at = video_session.ended_at

    assert session_end(session=video_session, by=owner).ended_at == ended_at
