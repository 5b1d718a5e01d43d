"""Usage pages: "My usage", the space's usage (owners), the session cost tag."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import timezone

from tests.factories import VideoSessionFactory
from tests.transcription.usage_factories import at, make_participant, make_usage

pytestmark = pytest.mark.django_db


def test_my_usage_page_shows_totals_and_a_day_chart(owner_client, owner, video_session):
    make_usage(session=video_session, user=owner, seconds=61, created_at=at("2026-10-01"))
    make_usage(session=video_session, user=owner, seconds=600, created_at=at("2026-10-04"))

    response = owner_client.get("/me/usage/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<dd id="usage-minutes">12</dd>' in html
    assert '<dd id="usage-cost">$0.15</dd>' in html
    # One bar per day from the first to the last day with usage, gaps included.
    assert html.count("<rect ") == 2 * 4
    assert "10/04/2026: 10 min" in html  # the language's short date
    assert "<script" not in html.split("<main", 1)[1]


def test_my_usage_page_without_usage(owner_client):
    response = owner_client.get("/me/usage/")
    assert response.status_code == 200
    assert '<dd id="usage-minutes">0</dd>' in response.content.decode()
    assert "No usage in this period." in response.content.decode()


def test_my_usage_page_period_and_bad_period(owner_client, owner, video_session):
    make_usage(session=video_session, user=owner, seconds=60, created_at=at("2026-09-01"))
    make_usage(session=video_session, user=owner, seconds=120, created_at=at("2026-10-01"))

    october = owner_client.get("/me/usage/", {"from": "2026-10-01", "to": "2026-10-31"})
    assert '<dd id="usage-minutes">2</dd>' in october.content.decode()

    bad = owner_client.get("/me/usage/", {"from": "2026-10-31", "to": "2026-10-01"})
    assert bad.status_code == 400
    assert "must not be after" in bad.content.decode()


def test_my_usage_shows_only_the_signed_in_users_runs(member_client, owner, video_session):
    make_usage(session=video_session, user=owner, seconds=6000)
    html = member_client.get("/me/usage/").content.decode()
    assert '<dd id="usage-minutes">0</dd>' in html


def test_my_usage_needs_sign_in(client):
    response = client.get("/me/usage/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_nav_links_to_my_usage(owner_client):
    assert 'href="/me/usage/"' in owner_client.get("/spaces/").content.decode()


def test_space_page_shows_usage_section_to_owners_only(
    owner_client, member_client, owner, space, video_session
):
    make_usage(session=video_session, user=owner, seconds=600)
    owner_html = owner_client.get(f"/spaces/{space.slug}/").content.decode()
    member_html = member_client.get(f"/spaces/{space.slug}/").content.decode()

    assert "Usage, last 30 days" in owner_html
    assert '<dd class="space-total-cost">$0.125</dd>' in owner_html
    assert video_session.title in owner_html.split("Usage, last 30 days", 1)[1]
    assert "Usage, last 30 days" not in member_html
    assert "space-total-cost" not in member_html


def test_space_usage_page_for_owner_member_and_outsider(
    owner_client, member_client, outsider_client, owner, space, video_session
):
    make_usage(session=video_session, user=owner, seconds=120, created_at=at("2026-10-02"))
    url = f"/spaces/{space.slug}/usage/"

    owner_response = owner_client.get(url, {"from": "2026-10-01", "to": "2026-10-31"})
    assert owner_response.status_code == 200
    assert '<dd class="space-total-cost">$0.025</dd>' in owner_response.content.decode()
    assert member_client.get(url).status_code == 403
    assert outsider_client.get(url).status_code == 404


def test_space_usage_page_bad_period_is_400(owner_client, space):
    response = owner_client.get(f"/spaces/{space.slug}/usage/", {"from": "nope"})
    assert response.status_code == 400
    assert "&#x27;from&#x27; must be a date" in response.content.decode()


def test_session_cost_tag_renders_transcription_video_and_total(settings, owner, video_session):
    settings.LIVEKIT_ENABLED = True
    settings.LIVEKIT_COST_PER_PARTICIPANT_MINUTE = Decimal("0.0005")
    start = at("2026-10-01", 9)
    make_participant(
        session=video_session,
        identity="a",
        joined_at=start,
        left_at=start + timedelta(minutes=20),
    )
    make_usage(session=video_session, user=owner, seconds=120, created_at=start)

    html = Template("{% load usage_tags %}{% session_cost session %}").render(
        Context({"session": video_session})
    )

    assert "$0.025 <span" in html  # transcription: 2 min at 0.0125
    assert "$0.01 <span" in html  # video: 20 participant-minutes at 0.0005
    assert "(20 participant-minutes)" in html
    assert "(2 min in 1 run)" in html
    assert '<dd class="cost-total">$0.035</dd>' in html


def test_session_cost_tag_for_a_mesh_session_says_no_video_server(owner, space):
    mesh = VideoSessionFactory(space=space, created_by=owner, peer_to_peer=True)
    html = Template("{% load usage_tags %}{% session_cost session %}").render(
        Context({"session": mesh})
    )
    assert "peer-to-peer, no video server" in html
    assert '<dd class="cost-total">$0.00</dd>' in html


def test_live_session_page_shows_cost_to_the_host_only(
    owner_client, member_client, owner, video_session
):
    make_usage(session=video_session, user=owner, seconds=60)
    url = f"/sessions/{video_session.slug}/"
    assert "Cost of this session" in owner_client.get(url).content.decode()
    assert "Cost of this session" not in member_client.get(url).content.decode()


# --- One money format (issue 16) ---------------------------------------------------------------

RAW_DECIMAL = re.compile(r"\b\d+\.\d{5,}\b")


def test_space_pages_write_every_amount_as_money_never_raw_decimals(
    settings, owner_client, owner, space, video_session
):
    """SQLite sums of decimals come back as ``0.0250000000000000``; the pages write ``$0.03``."""
    settings.LIVEKIT_ENABLED = True
    settings.LIVEKIT_COST_PER_PARTICIPANT_MINUTE = Decimal("0.0005")
    start = timezone.now() - timedelta(days=1)
    make_participant(
        session=video_session, identity="a", joined_at=start, left_at=start + timedelta(minutes=4)
    )
    make_usage(session=video_session, user=owner, seconds=120, created_at=start)

    for url in (f"/spaces/{space.slug}/", f"/spaces/{space.slug}/usage/"):
        html = owner_client.get(url).content.decode()
        usage = html.split("usage-totals", 1)[1]
        assert not RAW_DECIMAL.search(usage), (url, RAW_DECIMAL.search(usage))
        assert "0.0000" not in usage
        assert "$0.025" in usage  # transcription, 2 min at 0.0125
        assert "$0.002" in usage  # video, 4 participant-minutes at 0.0005
        assert "$0.027" in usage  # the total: the amounts shown add up
        assert "4 participant-minutes" in usage
        assert "p-min" not in html
        assert "Amounts in USD." in usage


def test_the_currency_setting_changes_every_amount(settings, owner_client, owner, video_session):
    settings.CURRENCY = "EUR"
    make_usage(session=video_session, user=owner, seconds=60, created_at=at("2026-10-01"))

    html = owner_client.get("/me/usage/").content.decode()

    assert '<dd id="usage-cost">€0.0125</dd>' in html
    assert "$" not in html.split("<main", 1)[1]


def test_the_cost_of_an_ended_session_shows_its_metered_time_and_billing_apart(
    owner, video_session
):
    """1 min 33 s of transcription bills 2 minutes: the card says both, not "1 minute"."""
    from sessions_app.services import session_end

    make_usage(session=video_session, user=owner, seconds=93)
    session_end(session=video_session, by=owner)

    html = Template("{% load usage_tags %}{% session_cost session %}").render(
        Context({"session": video_session})
    )

    assert "(2 min in 1 run)" in html
    assert "Transcribed for 1:33, billed as 2 minutes" in html


def test_a_live_session_cost_has_no_billing_line_that_would_go_stale(owner, video_session):
    make_usage(session=video_session, user=owner, seconds=93)
    html = Template("{% load usage_tags %}{% session_cost session %}").render(
        Context({"session": video_session})
    )
    assert "Transcribed for" not in html


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00"), (59.9, "0:59"), (93, "1:33"), (3725, "1:02:05")]
)
def test_durations_read_as_a_clock(seconds, text):
    start = at("2026-10-01", 9)
    rendered = Template("{% load usage_tags %}{{ s|clock }} {{ a|elapsed:b }}").render(
        Context({"s": seconds, "a": start, "b": start + timedelta(seconds=seconds)})
    )
    assert rendered == f"{text} {text}"


def test_one_day_of_usage_is_one_bar_at_the_right_not_the_whole_chart():
    from datetime import date

    from transcription.usage.chart import BAR_GAP, BAR_WIDTH, MIN_DAYS, day_chart

    chart = day_chart([{"date": date(2026, 10, 1), "minutes": 3, "cost": Decimal("0.03")}])

    step = BAR_WIDTH + BAR_GAP
    assert chart["width"] == MIN_DAYS * step
    assert [bar["x"] for bar in chart["bars"]] == [(MIN_DAYS - 1) * step]
