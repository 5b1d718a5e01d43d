"""Translation cost on the pages: the session cost card (live and finished), "My usage", the
space's usage and its section on the space page; who may see them; Russian formats."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import timezone, translation

from tests.factories import VideoSessionFactory
from tests.transcription.translation_usage_factories import make_translation
from tests.transcription.usage_factories import at, make_usage

pytestmark = pytest.mark.django_db

RU = {"HTTP_ACCEPT_LANGUAGE": "ru"}


@pytest.fixture(autouse=True)
def _price(settings):
    settings.TRANSLATION_COST_PER_MILLION_CHARACTERS = Decimal("20")


@pytest.fixture
def translated(owner, video_session):
    """2 min of transcription ($0.025) translated into Russian ($0.25) and German ($0.02)."""
    day = timezone.now()
    usage = make_usage(session=video_session, user=owner, seconds=120, created_at=day)
    make_translation(usage=usage, language="ru", characters=12_500, created_at=day)
    make_translation(usage=usage, language="de", characters=1_000, created_at=day)
    return usage


def _card(session) -> str:
    return Template("{% load usage_tags %}{% session_cost session %}").render(
        Context({"session": session})
    )


def test_the_session_cost_card_shows_translation_per_language_in_the_total(
    video_session, translated
):
    html = _card(video_session)

    assert '<dd class="cost-translation">$0.27 <span class="muted">(' in html
    assert "Russian: 12,500 characters, $0.25</span>; " in html
    assert "German: 1,000 characters, $0.02</span>)" in html
    assert '<dd class="cost-total">$0.295</dd>' in html  # 0.025 + 0.27
    # Translation sits between video and the total: the live box's script reads the first
    # cell (transcription), the second (video) and the last (total) by position.
    cells = html.split("<dd")[1:]
    assert 'class="cost-translation"' in cells[2] and 'class="cost-total"' in cells[-1]


def test_a_session_without_translation_says_nothing_was_translated(video_session):
    html = _card(video_session)
    assert '<dd class="cost-translation">$0.00 <span class="muted">(nothing translated)' in html


def test_one_translated_character_is_one_character(owner, video_session):
    make_translation(session=video_session, user=owner, language="fr", characters=1)
    assert "French: 1 character, $0.00002" not in _card(video_session)  # rounds to the meter
    assert "French: 1 character, $0.00" in _card(video_session)


def test_the_cost_card_writes_russian_numbers_and_names(video_session, translated):
    with translation.override("ru"):
        html = _card(video_session)
    assert "12\u00a0500" in html  # grouped the Russian way
    assert "0,25\u00a0$" in html
    assert "Русский" in html or "русский" in html


def test_the_live_page_shows_translation_cost_to_the_host_only(
    owner_client, member_client, video_session, translated
):
    url = f"/sessions/{video_session.slug}/"
    host = owner_client.get(url).content.decode()
    member = member_client.get(url).content.decode()
    assert 'class="cost-translation"' in host and "Russian: 12,500 characters" in host
    assert "cost-translation" not in member and "12,500" not in member


def test_the_finished_page_shows_translation_cost(owner_client, owner, video_session, translated):
    from sessions_app.services import session_end

    session_end(session=video_session, by=owner)
    html = owner_client.get(f"/sessions/{video_session.slug}/", follow=True).content.decode()
    assert "Russian: 12,500 characters, $0.25" in html
    assert '<dd class="cost-total">$0.295</dd>' in html


def test_my_usage_shows_translation_its_languages_and_the_total(owner_client, translated):
    html = owner_client.get("/me/usage/").content.decode()

    assert '<dd id="usage-cost">$0.025</dd>' in html  # transcription, as before
    assert '<dd id="usage-translation-cost">$0.27 <span class="muted">13,500 characters' in html
    assert '<dd id="usage-total-cost">$0.295</dd>' in html
    table = html.split('class="usage-table usage-translation"', 1)[1].split("</table>", 1)[0]
    assert '<tr data-language="ru"><td>Russian</td><td>12,500</td><td>$0.25</td></tr>' in table
    assert '<tr data-language="de"><td>German</td><td>1,000</td><td>$0.02</td></tr>' in table
    assert "$20.00 a million" in html
    days = html.split('usage-days"', 1)[1].split("</table>", 1)[0]
    assert '<td data-label="Transcription">$0.025 <span class="muted">2 min</span></td>' in days
    assert '<td data-label="Translation">$0.27 <span class="muted">13,500 characters' in days
    assert '<td data-label="Total"><strong>$0.295</strong></td>' in days


def test_my_usage_shows_only_my_translation(member_client, translated):
    html = member_client.get("/me/usage/").content.decode()
    assert '<dd id="usage-translation-cost">$0.00 <span class="muted">0 characters' in html
    assert "No captions were translated in this period." in html
    assert 'usage-translation"' not in html


def test_my_usage_period_limits_translation(owner_client, owner, video_session):
    usage = make_usage(session=video_session, user=owner, seconds=60, created_at=at("2026-09-30"))
    make_translation(usage=usage, language="ru", characters=5_000, created_at=at("2026-09-30"))
    september = owner_client.get("/me/usage/", {"from": "2026-09-01", "to": "2026-09-30"})
    october = owner_client.get("/me/usage/", {"from": "2026-10-01", "to": "2026-10-31"})
    assert "$0.10 <span" in september.content.decode()
    assert '<dd id="usage-translation-cost">$0.00' in october.content.decode()


def test_space_usage_page_shows_translation_to_owners(
    owner_client, member_client, outsider_client, space, video_session, translated
):
    url = f"/spaces/{space.slug}/usage/"
    html = owner_client.get(url).content.decode()

    assert '<dd class="space-total-cost">$0.295</dd>' in html
    assert '<dd class="space-translation-cost">$0.27 <span class="muted">13,500 characters' in html
    row = html.split("usage-sessions", 1)[1].split("</tr>", 2)[1]
    assert video_session.title in row
    assert '<td data-label="Translation">$0.27 <span class="muted">13,500 characters' in row
    assert "Translation by language" in html
    assert "<td>Russian</td><td>12,500</td><td>$0.25</td>" in html
    assert "Translation is billed by the characters of translated text: $20.00 a million." in html
    assert member_client.get(url).status_code == 403
    assert outsider_client.get(url).status_code == 404


def test_the_space_page_usage_section_has_translation_for_owners_only(
    owner_client, member_client, space, translated
):
    owner_html = owner_client.get(f"/spaces/{space.slug}/").content.decode()
    member_html = member_client.get(f"/spaces/{space.slug}/").content.decode()
    section = owner_html.split("Usage, last 30 days", 1)[1]
    assert '<dd class="space-translation-cost">$0.27' in section
    assert '<dd class="space-total-cost">$0.295</dd>' in owner_html
    assert "space-translation-cost" not in member_html


def test_a_session_only_retranslated_is_among_the_costly_sessions(owner_client, owner, space):
    quiet = VideoSessionFactory(space=space, created_by=owner, title="Only re-translated")
    make_translation(session=quiet, user=owner, language="uk", characters=10_000, provider="llm")
    html = owner_client.get(f"/spaces/{space.slug}/usage/").content.decode()
    assert "Only re-translated" in html.split("usage-sessions", 1)[1]
    assert "No session cost anything in this period." not in html


def test_space_usage_reads_in_russian_formats(owner_client, space, translated):
    html = owner_client.get(f"/spaces/{space.slug}/usage/", **RU).content.decode()
    assert "0,27\u00a0$" in html
    assert "<td>12\u00a0500</td>" in html


def test_day_charts_draw_in_russian_too(owner_client, owner, space, video_session):
    """SVG coordinates are numbers: a Russian decimal comma ("93,3") draws no bar at all."""
    for day, seconds in (("2026-10-01", 3600), ("2026-10-02", 1260), ("2026-10-04", 60)):
        usage = make_usage(session=video_session, user=owner, seconds=seconds, created_at=at(day))
        make_translation(usage=usage, language="ru", characters=seconds * 7, created_at=at(day))

    for url in ("/me/usage/", f"/spaces/{space.slug}/usage/"):
        html = owner_client.get(url, **RU).content.decode()
        rects = re.findall(r"<rect ([^>]*)>", html)
        assert len(rects) == 2 * 4, url
        assert not [r for r in rects if "," in r], url
        assert any(re.search(r'height="\d+\.\d+"', r) for r in rects), url
