"""Translation in the admin: its meter's list (filters, totals, CSV), next to transcription in
the usage report and the session's cost, and stored translations for staff (read-only)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.test import Client

from tests.factories import SpaceFactory, UserFactory, VideoSessionFactory
from tests.transcription.transcripts import store_transcript
from tests.transcription.translation_usage_factories import make_translation
from tests.transcription.usage_factories import at, make_usage
from transcription.models import SegmentTranslation, TranslationUsage

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/transcription/translationusage/"
EXPORT = "/admin/transcription/translationusage/export.csv"
USAGE = "/admin/transcription/transcriptionusage/"


@pytest.fixture(autouse=True)
def _price(settings):
    settings.TRANSLATION_COST_PER_MILLION_CHARACTERS = Decimal("20")


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def data(owner, member, space):
    """In the space: a live run translated into Russian and German in October, Russian
    re-translated after the session in November; another space's French."""
    big = VideoSessionFactory(space=space, created_by=owner, title="Big review")
    usage = make_usage(session=big, user=owner, seconds=600, created_at=at("2026-10-03"))
    make_translation(usage=usage, language="ru", characters=100_000, created_at=at("2026-10-03"))
    make_translation(usage=usage, language="de", characters=25_000, created_at=at("2026-10-03"))
    make_translation(
        session=big,
        user=member,
        language="ru",
        characters=5_000,
        provider="llm",
        created_at=at("2026-11-02"),
    )
    other = VideoSessionFactory(space=SpaceFactory(), title="Other space")
    other_usage = make_usage(session=other, user=owner, seconds=60, created_at=at("2026-10-10"))
    make_translation(
        usage=other_usage, language="fr", characters=1_000_000, created_at=at("2026-10-10")
    )
    return {"big": big, "usage": usage, "other": other}


def _text(response) -> str:
    return response.content.decode()


def test_translation_list_totals_for_a_space_and_month(staff_client, space, data):
    response = staff_client.get(
        CHANGELIST,
        {
            "session__space__id__exact": space.pk,
            "created_from": "2026-10-01",
            "created_to": "2026-10-31",
        },
    )

    assert response.status_code == 200
    html = _text(response)
    assert '<dd id="translation-total-cost">$2.50</dd>' in html  # 125,000 characters at 20/M
    assert '<dd id="translation-total-characters">125,000</dd>' in html
    assert '<dd id="translation-total-sessions">1</dd>' in html
    languages = html.split('id="translation-languages"', 1)[1].split("</table>", 1)[0]
    assert languages.index("Russian") < languages.index("German")  # the costliest first
    assert "<td>100,000</td>" in languages and "<td>$2.00</td>" in languages
    drivers = html.split('id="translation-drivers"', 1)[1].split("</table>", 1)[0]
    assert "Big review" in drivers and "Other space" not in drivers
    assert '$2.50 <span class="quiet">125,000 characters</span>' in drivers
    assert '<td class="field-characters_count">100,000</td>' in html
    assert response.context["cl"].result_count == 2


@pytest.mark.parametrize(
    ("params", "characters"),
    [
        ({"language_code": "RU"}, "105,000"),  # typed, in any case
        ({"when": "after"}, "5,000"),
        ({"when": "live"}, "1,125,000"),
        ({"provider__exact": "llm"}, "5,000"),
        ({"user_email": "member@example.com"}, "5,000"),
    ],
)
def test_translation_list_filters(staff_client, data, params, characters):
    html = _text(staff_client.get(CHANGELIST, params))
    assert f'<dd id="translation-total-characters">{characters}</dd>' in html


def test_translation_list_with_a_bad_date_range_says_why(staff_client, data):
    response = staff_client.get(CHANGELIST, {"created_from": "x"})
    assert response.status_code == 200
    assert "&#x27;from&#x27; must be a date" in _text(response)


def test_translation_csv_export_has_exactly_the_filtered_rows(staff_client, space, data):
    response = staff_client.get(EXPORT, {"session__space__id__exact": space.pk})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "translation-usage-" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(
        (r["language"], r["provider"], r["characters"], r["total_cost"]) for r in rows
    ) == [
        ("de", "gladia", "25000", "0.5000"),
        ("ru", "gladia", "100000", "2.0000"),
        ("ru", "llm", "5000", "0.1000"),
    ]
    assert {r["run"] for r in rows if r["provider"] == "llm"} == {""}


def test_translation_csv_export_action(staff_client, data):
    chosen = TranslationUsage.objects.filter(session=data["other"])
    response = staff_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [r.pk for r in chosen]}
    )
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["language"], r["total_cost"]) for r in rows] == [("fr", "20.0000")]


def test_translation_csv_with_an_unknown_filter_goes_back_to_the_list(staff_client, data):
    response = staff_client.get(EXPORT, {"no_such_field__exact": "1"})
    assert response.status_code == 302
    assert response["Location"].endswith(f"{CHANGELIST}?e=1")


def test_translation_admin_is_staff_only_and_read_only(owner_client, staff_client, data):
    assert owner_client.get(CHANGELIST).status_code == 302
    assert owner_client.get(EXPORT).status_code == 302
    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403
    row = TranslationUsage.objects.filter(language="de").get()
    page = staff_client.get(f"{CHANGELIST}{row.pk}/change/")
    assert page.status_code == 200
    html = _text(page)
    assert 'name="_save"' not in html
    assert "$20.00" in html and "$0.50" in html  # the price and the cost, as money
    assert ">20.0000<" not in html
    response = staff_client.post(f"{CHANGELIST}{row.pk}/change/", {"characters": 1})
    assert response.status_code == 403
    row.refresh_from_db()
    assert row.characters == 25_000


def test_usage_report_shows_the_translation_of_the_same_runs(staff_client, space, data):
    response = staff_client.get(
        USAGE,
        {"session__space__id__exact": space.pk, "created_from": "2026-10-01"},
    )

    html = _text(response)
    # The space's run and its live translation; the re-translation had no run.
    assert '<dd id="usage-translation-cost">$2.50 <span class="quiet">125,000 characters' in html
    drivers = html.split('id="usage-drivers"', 1)[1].split("</table>", 1)[0]
    # The whole session's translation, and its total with transcription.
    assert '<td>$2.60 <span class="quiet">130,000 characters</span></td>' in drivers
    assert "$2.725</td>" in drivers  # 10 min at 0.0125 + 2.60


def test_session_admin_adds_translation_to_the_cost(staff_client, data):
    big = data["big"]
    listing = _text(staff_client.get("/admin/sessions_app/videosession/"))
    change = _text(staff_client.get(f"/admin/sessions_app/videosession/{big.pk}/change/"))

    assert "Cost (transcription + translation + video est.)" in listing
    assert "$2.725" in listing
    assert "$2.725 total = $0.125 transcription (10 min, 1 run) + " in change
    assert (
        "+ $2.60 translation (Russian: 105,000 characters, $2.10; "
        "German: 25,000 characters, $0.50)" in change
    )


def test_a_session_without_translation_says_so_in_the_admin(staff_client, owner, space):
    session = VideoSessionFactory(space=space, created_by=owner)
    change = _text(staff_client.get(f"/admin/sessions_app/videosession/{session.pk}/change/"))
    assert "+ $0.00 translation (nothing translated)" in change


def test_run_admin_shows_its_translation_meter(staff_client, data):
    html = _text(
        staff_client.get(f"/admin/transcription/transcriptionrun/{data['usage'].run_id}/change/")
    )
    assert "translation usage" in html.lower()
    assert "100000" in html or "100,000" in html
    assert "$2.00" in html


@pytest.fixture
def stored(owner, space):
    session = VideoSessionFactory(space=space, created_by=owner, title="Captions")
    first, second = store_transcript(
        session, [(0.0, 2.0, "", "", "Good morning."), (93.0, 95.0, "", "", "Let us start.")]
    )
    SegmentTranslation.objects.create(
        session=session, segment=first, language="ru", text="Доброе утро.", source="gladia"
    )
    SegmentTranslation.objects.create(
        session=session, segment=second, language="ru", text="Начнём.", source="llm"
    )
    second.revision = 1  # corrected after it was translated
    second.save(update_fields=["revision"])
    return {"session": session, "first": first, "second": second}


def test_staff_read_stored_translations(staff_client, stored):
    listing = _text(staff_client.get("/admin/transcription/segmenttranslation/"))

    assert "Доброе утро." in listing and "Начнём." in listing
    assert '<td class="field-at">1:33</td>' in listing
    assert '<td class="field-language_name">Russian</td>' in listing
    # Only the corrected segment's translation is stale.
    assert listing.count('alt="True"') == 1
    row = SegmentTranslation.objects.get(segment=stored["second"])
    change = _text(staff_client.get(f"/admin/transcription/segmenttranslation/{row.pk}/change/"))
    assert "Let us start." in change  # the original beside it
    assert 'name="_save"' not in change
    assert staff_client.get("/admin/transcription/segmenttranslation/add/").status_code == 403


def test_stored_translations_filter_by_language_and_source(staff_client, stored):
    url = "/admin/transcription/segmenttranslation/"
    assert "Начнём." not in _text(staff_client.get(url, {"source__exact": "gladia"}))
    assert "Доброе утро." not in _text(staff_client.get(url, {"language_code": "de"}))


def test_a_segment_shows_its_translations(staff_client, stored):
    html = _text(
        staff_client.get(f"/admin/transcription/transcriptsegment/{stored['first'].pk}/change/")
    )
    assert "Доброе утро." in html


def test_stored_translations_are_staff_only(owner_client, stored):
    assert owner_client.get("/admin/transcription/segmenttranslation/").status_code == 302
