"""The usage admin: filtered totals equal the API's, a day chart, top sessions, CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client

from rooms.money import format_money
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
    assert f'<dd id="usage-total-cost">{format_money(api["cost"])}</dd>' in html
    assert '<dd id="usage-total-cost">$0.6625</dd>' in html
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

    assert f'<dd id="usage-total-cost">{format_money(stats["cost"])}</dd>' in html
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
    assert '<dd id="usage-total-cost">$0.125</dd>' in html


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
    assert "10/20/2026: $0.0375 (3 min)" in _text(response)  # the language's short date


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

    listing = _text(staff_client.get("/admin/sessions_app/videosession/", {"o": "-10"}))
    change = _text(staff_client.get(f"/admin/sessions_app/videosession/{big.pk}/change/"))

    assert "$0.68" in listing  # 0.6500 transcription + 0.0300 video
    assert "$0.68 total = $0.65 transcription (52 min, 2 runs) + $0.03 video" in change
    assert "(60 participant-minutes)" in change


# --- What staff read (issue 16): money, plurals, no raw JSON, the list fits a laptop ----------


def test_usage_list_puts_the_cost_next_to_the_session_as_money(staff_client, usage_data):
    from transcription.admin import TranscriptionUsageAdmin

    columns = TranscriptionUsageAdmin.list_display
    assert columns.index("total_cost_money") <= 2, "cost must not need sideways scrolling"
    html = _text(staff_client.get(CHANGELIST, {"provider_name": "local"}))
    assert '<td class="field-total_cost_money">$0.625</td>' in html  # 50 min at 0.0125
    assert '<td class="field-duration">50:00</td>' in html
    assert '<td class="field-duration">1:01</td>' in html


def test_usage_row_and_run_pages_write_money(staff_client, usage_data):
    from transcription.models import TranscriptionUsage

    row = TranscriptionUsage.objects.filter(session=usage_data["small"]).order_by("pk").first()
    usage_page = _text(staff_client.get(f"{CHANGELIST}{row.pk}/change/"))
    run_page = _text(
        staff_client.get(f"/admin/transcription/transcriptionrun/{row.run_id}/change/")
    )

    for page in (usage_page, run_page):
        assert page.count("$0.0125") >= 2  # the rate, and the cost of its 1 minute
        assert ">0.0125<" not in page  # never the bare decimal


def test_one_run_reads_one_run(staff_client, owner, space):
    session = VideoSessionFactory(space=space, created_by=owner, title="Once")
    make_usage(session=session, user=owner, seconds=30)

    change = _text(staff_client.get(f"/admin/sessions_app/videosession/{session.pk}/change/"))

    assert "(1 min, 1 run)" in change
    assert "1 runs" not in change
    assert "(0 participant-minutes, peer-to-peer: no video server)" in change


def test_session_admin_shows_languages_and_how_video_flows(staff_client, owner, space, settings):
    settings.LIVEKIT_ENABLED = False
    VideoSessionFactory(space=space, created_by=owner, languages=["en", "fr"], title="Bilingual")
    VideoSessionFactory(space=space, created_by=owner, languages=[], title="Any")

    listing = _text(staff_client.get("/admin/sessions_app/videosession/"))

    assert '<td class="field-language_names">English, French</td>' in listing
    assert '<td class="field-language_names">detect</td>' in listing
    assert "peer-to-peer (LiveKit is off)" in listing
    assert '["en", "fr"]' not in listing


def test_session_admin_edits_languages_as_choices(staff_client, owner, space):
    session = VideoSessionFactory(space=space, created_by=owner, languages=["fr"])
    url = f"/admin/sessions_app/videosession/{session.pk}/change/"

    page = _text(staff_client.get(url))

    assert 'type="checkbox" name="languages" value="fr"' in page
    assert "checked" in page.split('value="fr"', 1)[1].split(">", 1)[0]
    assert "[&quot;fr&quot;]" not in page


def test_analysis_admin_shows_topics_action_items_and_speakers_readably(staff_client, owner, space):
    from sessions_app.models import SessionAnalysis

    session = VideoSessionFactory(space=space, created_by=owner)
    analysis = SessionAnalysis.objects.create(
        session=session,
        status="DONE",
        topics=["pricing model", "launch <date>"],
        action_items=[{"text": "Send the deck", "owner": "Ann", "due": "Friday", "start": 93}],
        speaker_stats=[
            {
                "identity": "u-1",
                "name": "Ann",
                "talk_seconds": 125,
                "words": 300,
                "wpm": 144,
                "turns": 7,
            }
        ],
    )

    page = _text(staff_client.get(f"/admin/sessions_app/sessionanalysis/{analysis.pk}/change/"))

    assert "pricing model, launch &lt;date&gt;" in page  # escaped, not markup
    assert 'Send the deck <span class="quiet">Ann · Friday · 1:33</span>' in page
    assert "<td>Ann</td><td>2:05</td><td>300</td><td>144</td><td>7</td>" in page
    assert "talk_seconds" not in page


def test_rerunning_one_analysis_says_one_analysis(staff_client, owner, space):
    from sessions_app.models import SessionAnalysis
    from sessions_app.services import session_end

    session = VideoSessionFactory(space=space, created_by=owner)
    session_end(session=session, by=owner)
    analysis = SessionAnalysis.objects.get(session=session)

    response = staff_client.post(
        "/admin/sessions_app/sessionanalysis/",
        {"action": "rerun", "_selected_action": [analysis.pk]},
        follow=True,
    )

    assert "1 analysis queued again." in _text(response)
