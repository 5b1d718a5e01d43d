"""Translation cost in the usage API and reports: per language, per day, in every total."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.factories import SpaceFactory, VideoSessionFactory
from tests.transcription.translation_usage_factories import make_translation
from tests.transcription.usage_factories import at, make_usage

pytestmark = pytest.mark.django_db

STATS = "/api/transcription/stats"


@pytest.fixture(autouse=True)
def _price(settings):
    settings.TRANSLATION_COST_PER_MILLION_CHARACTERS = Decimal("20")


def _session_usage(api, slug):
    return api.get(f"/api/sessions/{slug}/transcription/usage")


@pytest.fixture
def translated(owner, member, video_session):
    """2 min of transcription, its run translated into Russian and German, and Russian
    re-translated after the session by the member."""
    usage = make_usage(session=video_session, user=owner, seconds=120, created_at=at("2026-10-01"))
    day = at("2026-10-01")
    make_translation(usage=usage, language="ru", characters=12_500, segments=40, created_at=day)
    make_translation(usage=usage, language="de", characters=1_000, segments=4, created_at=day)
    make_translation(
        session=video_session,
        user=member,
        language="ru",
        characters=500,
        segments=2,
        provider="llm",
        created_at=at("2026-10-02"),
    )
    return usage


def test_session_usage_has_translation_per_language_and_in_the_total(
    member_api, video_session, translated
):
    response = _session_usage(member_api, video_session.slug)

    assert response.status_code == 200
    body = response.json()
    translation = body["translation"]
    assert translation["characters"] == 14_000
    assert translation["segments"] == 46
    assert translation["cost"] == "0.2800"  # 14,000 characters at 20 a million
    assert translation["formatted_cost"] == "$0.28"
    assert translation["cost_per_million_characters"] == "20.0000"
    assert translation["languages"] == [
        {
            "language": "ru",
            "name": "Russian",
            "characters": 13_000,
            "segments": 42,
            "cost": "0.2600",
            "formatted_cost": "$0.26",
        },
        {
            "language": "de",
            "name": "German",
            "characters": 1_000,
            "segments": 4,
            "cost": "0.0200",
            "formatted_cost": "$0.02",
        },
    ]
    rows = {(r["language"], r["provider"]): r for r in translation["rows"]}
    assert rows["ru", "gladia"]["run_id"] == translated.run_id
    assert rows["ru", "gladia"]["audio_seconds"] == 120
    assert rows["ru", "llm"]["run_id"] is None  # after the session
    assert rows["ru", "llm"]["user"] == "Max Member"
    assert rows["ru", "llm"]["total_cost"] == "0.0100"
    # Transcription stays as it was; the total adds translation to it.
    assert body["totals"]["cost"] == body["cost"]["transcription_cost"] == "0.0250"
    assert body["cost"]["total_cost"] == "0.3050"
    assert body["cost"]["formatted"]["total_cost"] == "$0.305"


def test_session_usage_without_translation_says_zero_not_null(owner_api, video_session):
    translation = _session_usage(owner_api, video_session.slug).json()["translation"]
    assert translation["characters"] == 0
    assert translation["cost"] == "0.0000"
    assert translation["languages"] == [] and translation["rows"] == []


def test_outsider_learns_nothing_of_a_sessions_translation(outsider_api, video_session, translated):
    response = _session_usage(outsider_api, video_session.slug)
    assert response.status_code == 404
    assert "translation" not in response.json()


def test_stats_count_the_users_own_translation_per_day(
    owner_api, member_api, owner, video_session, translated
):
    # Another space's run of the owner's, translated on another day.
    elsewhere = VideoSessionFactory(space=SpaceFactory(), created_by=owner)
    other = make_usage(session=elsewhere, user=owner, seconds=60, created_at=at("2026-10-05"))
    make_translation(usage=other, language="fr", characters=2_000, created_at=at("2026-10-05"))

    owner_stats = owner_api.get(STATS).json()
    member_stats = member_api.get(STATS).json()

    # The owner started both runs: their translation is the owner's.
    assert owner_stats["translation"]["characters"] == 12_500 + 1_000 + 2_000
    assert owner_stats["translation"]["cost"] == "0.3100"
    assert owner_stats["cost"] == "0.0375"  # 3 min of transcription
    assert owner_stats["total_cost"] == "0.3475"
    assert [x["language"] for x in owner_stats["translation"]["languages"]] == ["ru", "fr", "de"]
    # Live translation is dated by its meter row (created at the run's first checkpoint).
    days = owner_stats["translation"]["days"]
    assert [d["characters"] for d in days] == [13_500, 2_000]
    # The member re-translated after the session: that is the member's, on its own day.
    assert member_stats["translation"]["characters"] == 500
    assert member_stats["translation"]["days"] == [
        {"date": "2026-10-02", "characters": 500, "cost": "0.0100"}
    ]
    assert member_stats["total_cost"] == "0.0100"
    # A day with only translation is a day of the usage series too (zero minutes).
    assert member_stats["days"] == [{"date": "2026-10-02", "minutes": 0, "cost": "0.0000"}]


def test_stats_translation_follows_the_period(owner_api, owner, video_session):
    september = make_usage(
        session=video_session, user=owner, seconds=60, created_at=at("2026-09-30")
    )
    october = make_usage(session=video_session, user=owner, seconds=60, created_at=at("2026-10-01"))
    make_translation(usage=september, language="ru", characters=1_000, created_at=at("2026-09-30"))
    make_translation(usage=october, language="ru", characters=3_000, created_at=at("2026-10-01"))

    body = owner_api.get(STATS, {"from": "2026-10-01", "to": "2026-10-31"}).json()

    assert body["translation"]["characters"] == 3_000
    assert body["translation"]["cost"] == "0.0600"
    assert body["translation"]["days"] == [
        {"date": "2026-10-01", "characters": 3_000, "cost": "0.0600"}
    ]


def test_space_usage_adds_translation_to_totals_sessions_and_days(
    owner_api, owner, space, video_session, translated
):
    # A session with no run at all, only re-translated afterwards, still drove cost.
    quiet = VideoSessionFactory(space=space, created_by=owner, title="Re-translated only")
    make_translation(
        session=quiet, user=owner, language="uk", characters=50_000, created_at=at("2026-10-03")
    )
    # Another space's translation never shows up.
    elsewhere = VideoSessionFactory(space=SpaceFactory(), title="Elsewhere")
    make_translation(session=elsewhere, user=owner, language="ru", characters=900_000)

    body = owner_api.get(f"/api/spaces/{space.slug}/usage").json()

    assert body["transcription_cost"] == "0.0250"
    assert body["translation"]["characters"] == 14_000 + 50_000
    assert body["translation"]["cost"] == "1.2800"
    assert body["total_cost"] == "1.3050"  # no video without LiveKit
    sessions = {s["title"]: s for s in body["top_sessions"]}
    assert list(sessions) == ["Re-translated only", video_session.title]  # costliest first
    assert sessions["Re-translated only"]["translation_characters"] == 50_000
    assert sessions["Re-translated only"]["total_cost"] == "1.0000"
    assert sessions[video_session.title]["translation_cost"] == "0.2800"
    assert sessions[video_session.title]["total_cost"] == "0.3050"
    assert [d["date"] for d in body["days"]] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert [d["characters"] for d in body["translation"]["days"]] == [13_500, 500, 50_000]


def test_space_translation_is_for_owners_only(member_api, outsider_api, space, translated):
    member = member_api.get(f"/api/spaces/{space.slug}/usage")
    outsider = outsider_api.get(f"/api/spaces/{space.slug}/usage")
    assert member.status_code == 403 and "translation" not in member.json()
    assert outsider.status_code == 404 and "translation" not in outsider.json()


def test_translation_rows_keep_the_price_they_were_metered_at(
    settings, owner_api, owner, video_session
):
    usage = make_usage(session=video_session, user=owner, seconds=60)
    make_translation(usage=usage, language="ru", characters=100_000)  # at 20 a million
    settings.TRANSLATION_COST_PER_MILLION_CHARACTERS = Decimal("10")
    make_translation(session=video_session, user=owner, language="ru", characters=100_000)

    translation = _session_usage(owner_api, video_session.slug).json()["translation"]

    assert translation["cost"] == "3.0000"  # 2.00 + 1.00
    assert translation["cost_per_million_characters"] == "10.0000"  # today's price


def test_the_schema_documents_the_translation_fields(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]

    translation = components["TranslationWithDays"]["properties"]
    assert {"characters", "segments", "cost", "formatted_cost", "languages", "days"} <= set(
        translation
    )
    assert {"language", "name", "characters", "cost"} <= set(
        components["TranslationLanguage"]["properties"]
    )
    assert "rows" in components["SessionTranslation"]["properties"]
    top = components["SpaceSession"]["properties"]
    assert {"translation_characters", "translation_cost"} <= set(top)
    total = components["VideoEstimate"]["properties"]["total_cost"]
    assert "translation" in total["description"]
