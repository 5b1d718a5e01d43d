"""Session lifecycle: CREATED → LIVE on first join → ENDED by the host or a space owner."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from sessions_app.models import Participant, VideoSession
from tests.factories import VideoSessionFactory


def join(api, session: VideoSession):
    return api.post(reverse("api-session-join", kwargs={"slug": session.slug}))


def end(api, session: VideoSession):
    return api.post(reverse("api-session-end", kwargs={"slug": session.slug}))


def test_a_new_session_is_created_and_not_started(video_session):
    assert video_session.status == VideoSession.Status.CREATED
    assert video_session.started_at is None
    assert video_session.ended_at is None


def test_first_join_makes_the_session_live(owner_api, video_session):
    before = timezone.now()

    response = join(owner_api, video_session)

    assert response.status_code == 200
    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.LIVE
    assert before <= video_session.started_at <= timezone.now()


def test_a_later_join_keeps_the_start_time(owner_api, member_api, video_session):
    join(owner_api, video_session)
    video_session.refresh_from_db()
    started_at = video_session.started_at

    join(member_api, video_session)

    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.LIVE
    assert video_session.started_at == started_at


def test_creator_joins_as_host(owner_api, owner, video_session):
    response = join(owner_api, video_session)

    assert response.json()["role"] == "HOST"
    participant = video_session.participants.get()
    assert participant.user == owner
    assert participant.identity == owner.identity
    assert participant.role == Participant.Role.HOST
    assert participant.name == "Olivia Owner"


def test_member_joins_as_guest(member_api, member, video_session):
    response = join(member_api, video_session)

    assert response.status_code == 200
    assert response.json()["role"] == "GUEST"
    assert video_session.participants.get(user=member).role == Participant.Role.GUEST


def test_space_owner_joins_a_members_session_as_guest(owner_api, member, space):
    session = VideoSessionFactory(space=space, created_by=member)

    assert join(owner_api, session).json()["role"] == "GUEST"


def test_second_join_of_the_same_user_creates_no_second_participant(owner_api, video_session):
    join(owner_api, video_session)
    first = video_session.participants.get()

    response = join(owner_api, video_session)

    assert response.status_code == 200
    assert video_session.participants.count() == 1
    assert video_session.participants.get().pk == first.pk


def test_rejoining_after_leaving_clears_left_at(owner_api, video_session):
    join(owner_api, video_session)
    video_session.participants.update(left_at=timezone.now())

    join(owner_api, video_session)

    assert video_session.participants.get().left_at is None


def test_host_ends_the_session(owner_api, member_api, video_session):
    join(owner_api, video_session)
    join(member_api, video_session)

    response = end(owner_api, video_session)

    assert response.status_code == 200
    assert response.json()["status"] == "ENDED"
    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.ENDED
    assert video_session.ended_at is not None
    assert not video_session.participants.filter(left_at__isnull=True).exists()


def test_a_session_can_be_ended_before_anyone_joined(owner_api, video_session):
    response = end(owner_api, video_session)

    assert response.status_code == 200
    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.ENDED


def test_join_after_end_is_refused_with_session_ended(owner_api, member_api, video_session):
    end(owner_api, video_session)

    response = join(member_api, video_session)

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "session_ended"
    assert "transcription_token" not in body
    assert not video_session.participants.exists()


def test_host_cannot_rejoin_after_end(owner_api, video_session):
    join(owner_api, video_session)
    end(owner_api, video_session)

    response = join(owner_api, video_session)

    assert response.status_code == 409
    assert video_session.participants.get().left_at is not None


def test_member_who_is_not_the_host_cannot_end(member_api, video_session):
    join(member_api, video_session)

    response = end(member_api, video_session)

    assert response.status_code == 403
    assert response.json()["code"] == "host_required"
    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.LIVE
    assert video_session.ended_at is None


def test_member_who_hosts_a_session_can_end_it(member_api, member, space):
    session = VideoSessionFactory(space=space, created_by=member)

    response = end(member_api, session)

    assert response.status_code == 200
    session.refresh_from_db()
    assert session.status == VideoSession.Status.ENDED


def test_space_owner_can_end_a_members_session(owner_api, member_api, member, space):
    session = VideoSessionFactory(space=space, created_by=member)
    join(member_api, session)

    response = end(owner_api, session)

    assert response.status_code == 200
    session.refresh_from_db()
    assert session.status == VideoSession.Status.ENDED


def test_ending_twice_is_harmless_and_keeps_the_end_time(owner_api, video_session):
    end(owner_api, video_session)
    video_session.refresh_from_db()
    ended_at = video_session.ended_at

    response = end(owner_api, video_session)

    assert response.status_code == 200
    assert response.json()["status"] == "ENDED"
    video_session.refresh_from_db()
    assert video_session.ended_at == ended_at


def test_outsider_cannot_end_or_join(outsider_api, owner_api, video_session):
    join(owner_api, video_session)

    assert end(outsider_api, video_session).status_code == 404
    assert join(outsider_api, video_session).status_code == 404

    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.LIVE
    assert video_session.participants.count() == 1
