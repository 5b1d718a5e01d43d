"""Usage and cost API: the user's stats, a session's usage, a space's usage (owners only)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from spaces.models import SpaceMember
from tests.factories import SpaceFactory, SpaceMemberFactory, VideoSessionFactory
from tests.transcription.usage_factories import at, make_participant, make_usage

pytestmark = pytest.mark.django_db

STATS = "/api/transcription/stats"


def test_stats_with_no_usage_are_zeros_not_nulls(owner_api):
    response = owner_api.get(STATS)
    assert response.status_code == 200
    body = response.json()
    assert body["minutes"] == 0
    assert body["cost"] == "0.0000"
    assert body["duration_seconds"] == 0
    assert body["sessions"] == 0
    assert body["runs"] == 0
    assert body["average_minutes_per_run"] == "0.00"
    assert body["days"] == []
    assert body["period"] == {"from": None, "to": None}


def test_stats_sum_the_users_own_runs_per_day(owner_api, owner, member, video_session):
    make_usage(session=video_session, user=owner, seconds=59, created_at=at("2026-10-01", 9))
    make_usage(session=video_session, user=owner, seconds=61, created_at=at("2026-10-01", 15))
    other = VideoSessionFactory(space=video_session.space, created_by=owner)
    make_usage(session=other, user=owner, seconds=600, created_at=at("2026-10-03"))
    # Someone else's run in the same session is not the owner's usage.
    make_usage(session=video_session, user=member, seconds=3600, created_at=at("2026-10-01"))

    body = owner_api.get(STATS).json()

    assert body["minutes"] == 1 + 2 + 10
    assert Decimal(body["cost"]) == Decimal("0.1625")  # 13 * 0.0125
    assert body["duration_seconds"] == pytest.approx(720)
    assert body["runs"] == 3
    assert body["sessions"] == 2
    assert body["average_minutes_per_run"] == "4.33"
    assert body["days"] == [
        {"date": "2026-10-01", "minutes": 3, "cost": "0.0375"},
        {"date": "2026-10-03", "minutes": 10, "cost": "0.1250"},
    ]


def test_stats_period_includes_both_end_days(owner_api, owner, video_session):
    make_usage(session=video_session, user=owner, seconds=60, created_at=at("2026-09-30", 23))
    make_usage(session=video_session, user=owner, seconds=120, created_at=at("2026-10-01", 0))
    make_usage(session=video_session, user=owner, seconds=180, created_at=at("2026-10-31", 23))
    make_usage(session=video_session, user=owner, seconds=240, created_at=at("2026-11-01", 0))

    body = owner_api.get(STATS, {"from": "2026-10-01", "to": "2026-10-31"}).json()

    assert body["minutes"] == 2 + 3
    assert body["runs"] == 2
    assert body["period"] == {"from": "2026-10-01", "to": "2026-10-31"}
    assert [d["date"] for d in body["days"]] == ["2026-10-01", "2026-10-31"]


def test_stats_open_ended_period(owner_api, owner, video_session):
    make_usage(session=video_session, user=owner, seconds=60, created_at=at("2026-01-05"))
    make_usage(session=video_session, user=owner, seconds=120, created_at=at("2026-06-05"))

    assert owner_api.get(STATS, {"from": "2026-03-01"}).json()["minutes"] == 2
    assert owner_api.get(STATS, {"to": "2026-03-01"}).json()["minutes"] == 1


def test_stats_accept_the_extreme_dates(owner_api, owner, video_session):
    make_usage(session=video_session, user=owner, seconds=60, created_at=at("2026-01-05"))
    body = owner_api.get(STATS, {"from": "0001-01-01", "to": "9999-12-31"}).json()
    assert body["minutes"] == 1


def test_stats_for_a_period_without_usage_are_zeros(owner_api, owner, video_session):
    make_usage(session=video_session, user=owner, seconds=60, created_at=at("2026-01-05"))
    body = owner_api.get(STATS, {"from": "2025-01-01", "to": "2025-12-31"}).json()
    assert (body["minutes"], body["cost"], body["runs"], body["days"]) == (0, "0.0000", 0, [])


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"from": "2026-13-01"}, "'from' must be a date written YYYY-MM-DD"),
        ({"to": "yesterday"}, "'to' must be a date written YYYY-MM-DD"),
        ({"from": "2026-02-30"}, "'from' must be a date"),
        ({"from": "01/10/2026"}, "'from' must be a date"),
        ({"from": "2026-10-02", "to": "2026-10-01"}, "must not be after 'to'"),
    ],
)
def test_bad_period_is_400_with_a_clear_message(owner_api, params, fragment):
    response = owner_api.get(STATS, params)
    assert response.status_code == 400
    assert fragment in response.json()["detail"]
    assert response.json()["code"] == "invalid_period"


def test_stats_need_a_signed_in_user(client):
    assert client.get(STATS).status_code in (401, 403)


# --- Session usage --------------------------------------------------------------------------


def _session_usage(api, slug):
    return api.get(f"/api/sessions/{slug}/transcription/usage")


def test_session_usage_lists_rows_and_totals_for_a_member(member_api, owner, member, video_session):
    make_usage(session=video_session, user=owner, seconds=90, created_at=at("2026-10-01", 9))
    make_usage(session=video_session, user=member, seconds=30, created_at=at("2026-10-01", 10))

    response = _session_usage(member_api, video_session.slug)

    assert response.status_code == 200
    body = response.json()
    assert [r["billed_minutes"] for r in body["rows"]] == [2, 1]
    assert [r["user"] for r in body["rows"]] == [owner.name, member.name]
    assert body["totals"]["minutes"] == 3
    assert body["totals"]["cost"] == "0.0375"
    assert body["totals"]["runs"] == 2
    assert body["cost"]["transcription_cost"] == "0.0375"


def test_session_usage_with_no_runs_is_zero(owner_api, video_session):
    body = _session_usage(owner_api, video_session.slug).json()
    assert body["rows"] == []
    assert body["totals"]["minutes"] == 0
    assert body["cost"] == {
        "formatted": {"transcription_cost": "$0.00", "video_cost": "$0.00", "total_cost": "$0.00"},
        "uses_livekit": False,
        "participant_minutes": 0,
        "video_cost": "0.0000",
        "transcription_cost": "0.0000",
        "total_cost": "0.0000",
    }


def test_every_usage_answer_names_its_currency_and_keeps_amounts_numeric(
    owner_api, owner, space, video_session, settings
):
    """Amounts stay decimal strings a program can add up; ``currency`` says what they are in,
    and the session's cost also comes written as the pages write it (for its live cost box)."""
    settings.CURRENCY = "EUR"
    make_usage(session=video_session, user=owner, seconds=120)

    stats = owner_api.get("/api/transcription/stats").json()
    session = _session_usage(owner_api, video_session.slug).json()
    space_usage = owner_api.get(f"/api/spaces/{space.slug}/usage").json()

    assert stats["currency"] == session["currency"] == space_usage["currency"] == "EUR"
    assert session["totals"]["currency"] == "EUR"
    assert stats["cost"] == session["cost"]["transcription_cost"] == "0.0250"
    assert space_usage["total_cost"] == "0.0250"
    assert session["cost"]["formatted"]["total_cost"] == "€0.025"


def test_session_usage_adds_the_video_estimate_with_livekit(
    owner_api, owner, video_session, settings
):
    settings.LIVEKIT_ENABLED = True
    settings.LIVEKIT_COST_PER_PARTICIPANT_MINUTE = Decimal("0.0005")
    start = at("2026-10-01", 9)
    make_participant(
        session=video_session,
        identity="a",
        joined_at=start,
        left_at=start + timedelta(minutes=30),
    )
    make_participant(
        session=video_session,
        identity="b",
        joined_at=start,
        left_at=start + timedelta(minutes=10, seconds=1),
    )
    make_usage(session=video_session, user=owner, seconds=600, created_at=start)

    cost = _session_usage(owner_api, video_session.slug).json()["cost"]

    assert cost["uses_livekit"] is True
    assert cost["participant_minutes"] == 30 + 11
    assert cost["video_cost"] == "0.0205"
    assert cost["transcription_cost"] == "0.1250"
    assert cost["total_cost"] == "0.1455"


def test_outsider_gets_404_for_session_usage(outsider_api, owner, video_session):
    make_usage(session=video_session, user=owner, seconds=60)
    response = _session_usage(outsider_api, video_session.slug)
    assert response.status_code == 404
    assert "rows" not in response.json()


def test_unknown_session_usage_is_404(owner_api):
    assert _session_usage(owner_api, "nope-nope-nope").status_code == 404


# --- Space usage ----------------------------------------------------------------------------


def _space_usage(api, slug, **params):
    return api.get(f"/api/spaces/{slug}/usage", params)


def test_space_usage_totals_and_top_sessions_for_an_owner(
    owner_api, owner, member, space, settings
):
    settings.LIVEKIT_ENABLED = True
    settings.LIVEKIT_COST_PER_PARTICIPANT_MINUTE = Decimal("0.001")
    cheap = VideoSessionFactory(space=space, created_by=owner, title="Cheap")
    costly = VideoSessionFactory(space=space, created_by=owner, title="Costly")
    mesh = VideoSessionFactory(space=space, created_by=owner, title="Mesh", peer_to_peer=True)
    VideoSessionFactory(space=space, created_by=owner, title="Never used")
    day = at("2026-10-05", 10)
    make_usage(session=cheap, user=owner, seconds=60, created_at=day)
    make_usage(session=costly, user=member, seconds=3600, created_at=day)
    make_usage(session=mesh, user=member, seconds=120, created_at=day + timedelta(days=1))
    make_participant(
        session=costly, identity="x", joined_at=day, left_at=day + timedelta(minutes=100)
    )
    make_participant(session=mesh, identity="y", joined_at=day, left_at=day + timedelta(hours=5))
    # Another space's usage never shows up.
    elsewhere = VideoSessionFactory(space=SpaceFactory(), title="Elsewhere")
    make_usage(session=elsewhere, user=owner, seconds=6000, created_at=day)

    response = _space_usage(owner_api, space.slug)

    assert response.status_code == 200
    body = response.json()
    assert body["minutes"] == 1 + 60 + 2
    assert body["transcription_cost"] == body["cost"] == "0.7875"  # 63 * 0.0125
    assert body["participant_minutes"] == 100  # the mesh session's 300 cost nothing
    assert body["video_cost"] == "0.1000"
    assert body["total_cost"] == "0.8875"
    assert body["runs"] == 3
    assert body["sessions"] == 3
    titles = [s["title"] for s in body["top_sessions"]]
    assert titles == ["Costly", "Mesh", "Cheap"]
    assert body["top_sessions"][0]["total_cost"] == "0.8500"
    assert body["top_sessions"][1]["video_cost"] == "0.0000"
    assert body["days"] == [
        {"date": "2026-10-05", "minutes": 61, "cost": "0.7625", "video_cost": "0.1000"},
        {"date": "2026-10-06", "minutes": 2, "cost": "0.0250", "video_cost": "0.0000"},
    ]


def test_space_usage_period_limits_rows_and_sessions(owner_api, owner, space):
    october = VideoSessionFactory(space=space, created_by=owner, title="October")
    november = VideoSessionFactory(space=space, created_by=owner, title="November")
    make_usage(session=october, user=owner, seconds=600, created_at=at("2026-10-15"))
    make_usage(session=november, user=owner, seconds=60, created_at=at("2026-11-02"))

    body = _space_usage(owner_api, space.slug, **{"from": "2026-10-01", "to": "2026-10-31"}).json()

    assert body["minutes"] == 10
    assert [s["title"] for s in body["top_sessions"]] == ["October"]
    assert body["period"] == {"from": "2026-10-01", "to": "2026-10-31"}


def test_space_usage_with_no_usage_is_zero(owner_api, space):
    body = _space_usage(owner_api, space.slug).json()
    assert body["total_cost"] == "0.0000"
    assert body["top_sessions"] == [] and body["days"] == []


def test_space_usage_bad_period_is_400(owner_api, space):
    response = _space_usage(owner_api, space.slug, **{"from": "2026-10-02", "to": "2026-10-01"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_period"


def test_member_gets_403_with_code_for_space_usage(member_api, space):
    response = _space_usage(member_api, space.slug)
    assert response.status_code == 403
    assert response.json()["code"] == "owner_required"


def test_outsider_gets_404_for_space_usage(outsider_api, space):
    response = _space_usage(outsider_api, space.slug)
    assert response.status_code == 404


def test_a_second_owner_sees_the_space_usage(space, owner, django_user_model):
    from rest_framework.test import APIClient

    co_owner = SpaceMemberFactory(space=space, role=SpaceMember.Role.OWNER).user
    session = VideoSessionFactory(space=space, created_by=owner)
    make_usage(session=session, user=owner, seconds=120)
    client = APIClient()
    client.force_authenticate(co_owner)
    assert _space_usage(client, space.slug).json()["minutes"] == 2
