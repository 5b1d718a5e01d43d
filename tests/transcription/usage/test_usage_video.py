"""The video cost estimate: LiveKit participant-minutes computed in the database."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from sessions_app.models import VideoSession
from tests.factories import VideoSessionFactory
from tests.transcription.usage_factories import at, make_participant, make_usage
from transcription.usage.pricing import billed_minutes
from transcription.usage.reports import session_cost, sessions_with_cost, space_report

pytestmark = pytest.mark.django_db

RATE = Decimal("0.0005")


@pytest.fixture
def livekit(settings):
    settings.LIVEKIT_ENABLED = True
    settings.LIVEKIT_COST_PER_PARTICIPANT_MINUTE = RATE


@pytest.mark.parametrize("seconds", [0, 0.5, 59, 60, 61, 119.999, 3 * 3600, 3 * 3600 + 1])
def test_a_connection_bills_minutes_like_a_transcription_run(livekit, video_session, seconds):
    start = at("2026-10-01", 9)
    make_participant(
        session=video_session,
        identity="a",
        joined_at=start,
        left_at=start + timedelta(seconds=seconds),
    )
    assert session_cost(session=video_session).participant_minutes == billed_minutes(seconds)


def test_connection_minutes_round_up_per_participant_not_per_session(livekit, video_session):
    start = at("2026-10-01", 9)
    for identity in ("a", "b", "c"):
        make_participant(
            session=video_session,
            identity=identity,
            joined_at=start,
            left_at=start + timedelta(seconds=61),
        )
    cost = session_cost(session=video_session)
    assert cost.participant_minutes == 6  # 3 * 2, not ceil(183 / 60) = 4
    assert cost.video_cost == Decimal("0.0030")


def test_a_participant_still_present_counts_until_the_session_ended(livekit, owner, space):
    start = at("2026-10-01", 9)
    session = VideoSessionFactory(
        space=space,
        created_by=owner,
        status=VideoSession.Status.ENDED,
        ended_at=start + timedelta(minutes=45),
    )
    make_participant(session=session, identity="stayed", joined_at=start, left_at=None)
    make_participant(
        session=session, identity="left", joined_at=start, left_at=start + timedelta(minutes=5)
    )
    cost = session_cost(session=session)
    assert cost.participant_minutes == 45 + 5
    assert cost.video_cost == Decimal("0.0250")


def test_a_participant_of_a_live_session_counts_until_now(livekit, owner, space):
    session = VideoSessionFactory(space=space, created_by=owner, status=VideoSession.Status.LIVE)
    make_participant(
        session=session,
        identity="here",
        joined_at=timezone.now() - timedelta(minutes=20, seconds=30),
    )
    # 20.5 minutes so far round up to 21 (22 if the clock crossed a minute during the test).
    assert session_cost(session=session).participant_minutes in (21, 22)


def test_a_connection_with_left_before_joined_counts_zero(livekit, video_session):
    start = at("2026-10-01", 9)
    make_participant(
        session=video_session,
        identity="clock-skew",
        joined_at=start,
        left_at=start - timedelta(minutes=3),
    )
    assert session_cost(session=video_session).participant_minutes == 0


def test_mesh_sessions_estimate_zero_video(livekit, owner, space):
    mesh = VideoSessionFactory(space=space, created_by=owner, peer_to_peer=True)
    start = at("2026-10-01", 9)
    make_participant(
        session=mesh, identity="a", joined_at=start, left_at=start + timedelta(hours=2)
    )
    make_usage(session=mesh, user=owner, seconds=600, created_at=start)
    cost = session_cost(session=mesh)
    assert (cost.participant_minutes, cost.video_cost) == (0, Decimal("0.0000"))
    assert cost.uses_livekit is False
    assert cost.total_cost == cost.transcription_cost == Decimal("0.1250")
    assert space_report(space=space)["participant_minutes"] == 0


def test_without_livekit_no_session_has_video_cost(settings, video_session):
    settings.LIVEKIT_ENABLED = False
    start = at("2026-10-01", 9)
    make_participant(
        session=video_session,
        identity="a",
        joined_at=start,
        left_at=start + timedelta(hours=1),
    )
    assert session_cost(session=video_session).video_cost == Decimal("0.0000")


def test_sessions_are_ordered_by_total_cost_in_the_database(livekit, owner, space):
    start = at("2026-10-01", 9)
    talk = VideoSessionFactory(space=space, created_by=owner, title="long video")
    make_participant(
        session=talk, identity="a", joined_at=start, left_at=start + timedelta(hours=100)
    )  # 6000 participant-min = 3.0000
    transcribed = VideoSessionFactory(space=space, created_by=owner, title="transcribed")
    make_usage(session=transcribed, user=owner, seconds=60 * 100, created_at=start)  # 1.2500
    empty = VideoSessionFactory(space=space, created_by=owner, title="empty")

    ordered = list(
        sessions_with_cost(VideoSession.objects.filter(space=space)).order_by("-total_cost")
    )

    assert [s.title for s in ordered[:2]] == ["long video", "transcribed"]
    assert ordered[0].total_cost == Decimal("3.0000")
    assert ordered[1].total_cost == Decimal("1.2500")
    last = next(s for s in ordered if s.pk == empty.pk)
    assert (last.transcription_cost, last.video_cost, last.total_cost) == (0, 0, 0)
