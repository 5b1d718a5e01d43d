"""The usage admin: filtered totals equal the API's, a day chart, top sessions, CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client

from tests.factories import SpaceFactory, UserFactory, VideoSessionFactory
from tests.transcription.usage_factories import at, make_participant, make_usage

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/transcription/transcriptionusage/"
EXPORT = "/admin/transcription/transcriptionusage/export.csv"


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def usage_data(owner, member, space):
    """Space X with two sessions over two months, plus another space's usage."""
    big = VideoSessionFactory(space=space, created_by=owner, title="Big review")
    small = VideoSessionFactory(space=space, created_by=owner, title="Small standup")
    make_usage(session=big, user=owner, seconds=3000, created_at=at("2026-10-03"))
    make_usage(session=big, user=member, seconds=61, created_at=at("2026-10-20"))
    make_usage(session=small, user=member, seconds=59, created_at=at("2026-10-20"))
    make_usage(session=small, user=owner, seconds=600, created_at=at("2026-11-02"))
    other = VideoSessionFactory(space=SpaceFactory(), title="Other space")
    make_usage(session=other, user=owner, seconds=6000, created_at=at("2026-10-10"))
    return {"big": big, "small": small, "other": other}


def _text(response) -> str:
    return response.content.decode()


def test_changelist_totals_for_space_and_month_equal_the_space_api(
    staff_client, owner_api, space, usage_data
):
    params = {
        "session__space__id__exact": space.pk,
        "created_from": "2026-10-01",
        "created_to": "2026-10-31",
    }
    response = staff_client.get(CHANGELIST, params)
    api = owner_api.get(
        f"/api/spaces/{space.slug}/usage", {"from": "2026-10-01", "to": "2026-10-31"}
    ).json()

    assert response.status_code == 200
    html = _text(response)
    assert api["cost"] == "0.6625"  # 50 + 2 + 1 minutes at 0.0125
    assert f'<dd id="usage-total-cost">{api["cost"]}</dd>' in html
    assert f'<dd id="usage-total-minutes">{api["minutes"]}</dd>' in html
    assert f'<dd id="usage-total-runs">{api["runs"]}</dd>' in html
    assert f'<dd id="usage-total-sessions">{api["sessions"]}</dd>' in html
    assert response.context["cl"].result_count == 3


def test_changelist_totals_for_a_user_equal_the_stats_api(staff_client, member, usage_data):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(member)
    stats = api.get("/api/transcription/stats").json()

    html = _text(staff_client.get(CHANGELIST, {"user_email": member.email.upper()}))

    assert f'<dd id="usage-total-cost">{stats["cost"]}</dd>' in html
    assert f'<dd id="usage-total-minutes">{stats["minutes"]}</dd>' in html


def test_changelist_provider_filter(staff_client, owner, space):
    session = VideoSessionFactory(space=space, created_by=owner)
    make_usage(session=session, user=owner, seconds=60, provider="gladia")
    make_usage(session=session, user=owner, seconds=300, provider="local")
    html = _text(staff_client.get(CHANGELIST, {"provider_name": "Gladia"}))
    assert '<dd id="usage-total-minutes">1</dd>' in html


def test_changelist_date_hierarchy_month_filters_totals(staff_client, usage_data):
    html = _text(staff_client.get(CHANGELIST, {"created_at__year": 2026, "created_at__month": 11}))
    assert '<dd id="usage-total-minutes">10</dd>' in html
    assert '<dd id="usage-total-cost">0.1250</dd>' in html


def test_changelist_lists_the_sessions_that_drove_the_cost(
    staff_client, space, usage_data, settings
):
    settings.LIVEKIT_ENABLED = True
    settings.LIVEKIT_COST_PER_PARTICIPANT_MINUTE = Decimal("0.0005")
    big = usage_data["big"]
    start = at("2026-10-03", 9)
    make_participant(
        session=big, identity="a", joined_at=start, left_at=start + timedelta(minutes=60)
    )

    response = staff_client.get(CHANGELIST, {"session__space__id__exact": space.pk})

    top = response.context["usage_summary"]["top"]
    assert [row["session"].title for row in top] == ["Big review", "Small standup"]
    assert top[0]["rows_cost"] == Decimal("0.6500")
    assert top[0]["session"].video_cost == Decimal("0.0300")
    html = _text(response)
    assert "Sessions that drove the cost" in html
    assert "Other space" not in html.split('id="usage-drivers"', 1)[1].split("</table>", 1)[0]


def test_changelist_day_chart_has_a_bar_per_day(staff_client, space, usage_data):
    response = staff_client.get(
        CHANGELIST,
        {
            "session__space__id__exact": space.pk,
            "created_from": "2026-10-01",
            "created_to": "2026-10-31",
        },
    )
    chart = response.context["usage_chart"]
    assert (chart["first"].isoformat(), chart["last"].isoformat()) == ("2026-10-03", "2026-10-20")
    assert len(chart["bars"]) == 18
    assert "2026-10-20: 0.0375 (3 min)" in _text(response)


def test_changelist_with_a_bad_date_range_says_why(staff_client, usage_data):
    response = staff_client.get(CHANGELIST, {"created_from": "2026-10-31", "created_to": "x"})
    assert response.status_code == 200
    assert "&#x27;to&#x27; must be a date" in _text(response)


def test_csv_export_has_exactly_the_filtered_rows(staff_client, space, usage_data):
    response = staff_client.get(
        EXPORT,
        {
            "session__space__id__exact": space.pk,
            "created_from": "2026-10-01",
            "created_to": "2026-10-31",
        },
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["session_title"], r["billed_minutes"], r["total_cost"]) for r in rows] == [
        ("Big review", "50", "0.6250"),
        ("Big review", "2", "0.0250"),
        ("Small standup", "1", "0.0125"),
    ]
    assert {r["space"] for r in rows} == {space.slug}
    assert sum(Decimal(r["total_cost"]) for r in rows) == Decimal("0.6625")


def test_csv_export_action_exports_the_selected_rows(staff_client, usage_data):
    from transcription.models import TranscriptionUsage

    chosen = TranscriptionUsage.objects.filter(session=usage_data["other"])
    response = staff_client.post(
        CHANGELIST,
        {"action": "export_csv", "_selected_action": [u.pk for u in chosen]},
    )
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["session_title"] for r in rows] == ["Other space"]
    assert rows[0]["billed_minutes"] == "100"


def test_csv_export_with_an_unknown_filter_goes_back_to_the_list(staff_client, usage_data):
    response = staff_client.get(EXPORT, {"no_such_field__exact": "1"})
    assert response.status_code == 302
    assert response["Location"].endswith(f"{CHANGELIST}?e=1")


def test_usage_admin_and_export_are_staff_only(owner_client):
    assert owner_client.get(CHANGELIST).status_code == 302
    assert owner_client.get(EXPORT).status_code == 302


def test_session_admin_shows_the_cost_column_and_breakdown(staff_client, usage_data, settings):
    settings.LIVEKIT_ENABLED = True
    settings.LIVEKIT_COST_PER_PARTICIPANT_MINUTE = Decimal("0.0005")
    big = usage_data["big"]
    start = at("2026-10-03", 9)
    make_participant(
        session=big, identity="a", joined_at=start, left_at=start + timedelta(minutes=60)
    )

    listing = _text(staff_client.get("/admin/sessions_app/videosession/", {"o": "-8"}))
    change = _text(staff_client.get(f"/admin/sessions_app/videosession/{big.pk}/change/"))

    assert "0.6800" in listing  # 0.6500 transcription + 0.0300 video
    assert "0.6800 total = 0.6500 transcription (52 min, 2 runs) + 0.0300 video" in change
