"""The search pages: ``/search/`` (every space of the signed-in person) and
``/spaces/<slug>/search/`` (one space): members only, hits grouped by session, pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from spaces.models import SpaceMember
from spaces.services import member_remove, space_create
from tests.transcription.test_search import meeting, say, translate

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret(space):
    session = meeting(space, title="SECRET-TITLE", started=datetime(2026, 11, 3, 10, tzinfo=UTC))
    [segment, _] = say(
        session,
        [
            (75.2, "Ada", "The SECRET-WORD budget for hiring.", "en"),
            (90, "Bo", "Budget later.", "en"),
        ],
    )
    translate(segment, "ru", "Бюджет на найм.")
    return session


def _space_url(space) -> str:
    return f"/spaces/{space.slug}/search/"


def test_the_pages_ask_to_sign_in(client, space):
    for url in ("/search/", _space_url(space)):
        response = client.get(url, {"q": "budget"})
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_member_sees_hits_grouped_by_session_with_links_to_the_moment(
    member_client, space, secret
):
    response = member_client.get(_space_url(space), {"q": "budget"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "2 matches for “budget”" in html
    assert html.count('class="card search-session"') == 1
    assert f'href="/sessions/{secret.slug}/?q=budget&amp;t=76"' in html
    assert f'href="/sessions/{secret.slug}/?q=budget&amp;t=90"' in html
    assert "<mark>budget</mark>" in html and "SECRET-TITLE" in html
    assert html.index("1:15") < html.index("1:30")  # a session's hits in the order said
    assert '<span class="speaker">Ada</span>' in html


def test_the_all_spaces_page_searches_every_space_of_the_person(
    owner, member, member_client, space, secret
):
    other = space_create(owner=owner, name="Second space")
    SpaceMember.objects.create(space=other, user=member)
    say(meeting(other, title="Other meeting"), [(1, "Cy", "Budget elsewhere.", "en")])

    html = member_client.get("/search/", {"q": "budget"}).content.decode()
    assert "3 matches for “budget”" in html
    assert "SECRET-TITLE" in html and "Other meeting" in html
    assert "Second space" in html  # each group says its space
    narrowed = member_client.get("/search/", {"q": "budget", "space": other.slug}).content.decode()
    assert "Other meeting" in narrowed and "SECRET-TITLE" not in narrowed
    assert (
        member_client.get(_space_url(space), {"q": "elsewhere"})
        .content.decode()
        .count('class="card search-session"')
        == 0
    )


def test_translations_are_labelled(member_client, space, secret):
    html = member_client.get(_space_url(space), {"q": "бюджет"}).content.decode()
    assert "translation, RU" in html and 'lang="ru"' in html


def test_an_outsider_gets_404_for_the_space_page_and_finds_nothing(outsider_client, space, secret):
    assert outsider_client.get(_space_url(space), {"q": "budget"}).status_code == 404
    response = outsider_client.get("/search/", {"q": "budget hiring"})
    assert response.status_code == 200
    assert "SECRET" not in response.content.decode()
    assert "Nothing in your meetings matches" in response.content.decode()
    for params in ({"space": space.slug}, {"session": secret.slug}):
        refused = outsider_client.get("/search/", {"q": "budget", **params})
        assert refused.status_code == 404 and "SECRET" not in refused.content.decode()


def test_a_removed_member_loses_the_space_page_and_its_hits(
    owner, member, member_client, space, secret
):
    assert "SECRET-TITLE" in member_client.get("/search/", {"q": "budget"}).content.decode()
    member_remove(space=space, member=SpaceMember.objects.get(space=space, user=member), by=owner)

    assert member_client.get(_space_url(space), {"q": "budget"}).status_code == 404
    html = member_client.get("/search/", {"q": "budget"}).content.decode()
    assert "SECRET" not in html


def test_filters_are_kept_and_a_bad_one_is_explained(member_client, space, secret):
    html = member_client.get(
        _space_url(space), {"q": "budget", "speaker": "bo", "from": "2026-11-01", "language": "en"}
    ).content.decode()
    assert "1 match for “budget”" in html, html[html.index("<main") :]
    assert "<mark>Budget</mark> later." in html
    assert 'name="speaker" value="bo"' in html and 'value="2026-11-01"' in html
    assert '<details class="search-filters" open>' in html
    assert re.search(r'<option value="en" selected>', html)

    bad = member_client.get(
        _space_url(space), {"q": "budget", "from": "2026-11-05", "to": "2026-11-01"}
    )
    assert bad.status_code == 400
    assert "The last day is before the first." in bad.content.decode()
    odd = member_client.get(_space_url(space), {"q": "budget", "from": "soon", "page": "x" * 50})
    assert odd.status_code == 400


def test_pages_of_results(member_client, space, secret):
    say(secret, [(100 + i, "Cy", f"Budget item {i}.", "en") for i in range(25)])
    first = member_client.get(_space_url(space), {"q": "budget"}).content.decode()
    assert "27 matches" in first and 'aria-current="page">1<' in first
    assert "?q=budget&amp;page=2" in first
    second = member_client.get(_space_url(space), {"q": "budget", "page": "2"}).content.decode()
    assert second.count('<li><a class="hit-time"') == 7
    beyond = member_client.get(_space_url(space), {"q": "budget", "page": "9"}).content.decode()
    assert "No more matches." in beyond


def test_an_empty_page_explains_the_syntax(member_client, space):
    html = member_client.get(_space_url(space)).content.decode()
    assert "a phrase" in html and "match" not in html.split("<main", 1)[1].split("</form>")[-1]


def test_the_top_bar_and_the_space_page_lead_to_search(member_client, space):
    space_page = member_client.get(f"/spaces/{space.slug}/").content.decode()
    assert f'action="/spaces/{space.slug}/search/"' in space_page
    assert 'href="/search/"' in space_page
    search_page = member_client.get("/search/").content.decode()
    assert 'href="/search/" aria-current="page"' in search_page


def test_a_capped_search_says_so(member_client, space, secret, monkeypatch):
    from transcription.search import postgres

    monkeypatch.setattr(postgres, "MATCHES_RANKED", 1)
    monkeypatch.setattr(postgres, "FIRST_ROUND_SESSIONS", (1, 1))
    newer = meeting(space, title="Newer", started=datetime(2026, 11, 20, tzinfo=UTC))
    say(newer, [(1, "Cy", "Budget one.", "en"), (2, "Cy", "Budget two.", "en")])

    html = member_client.get(_space_url(space), {"q": "budget"}).content.decode()

    assert "At least 2 matches for “budget”" in html
    assert "only the most recent meetings were searched" in html
    results = html.split('id="results-title"')[1]
    assert "Newer" in results and "SECRET-TITLE" not in results


def test_the_pager_links_the_ends_and_the_neighbours():
    from transcription.search_views import pager

    assert pager(1, 1) == [1]
    assert pager(1, 3) == [1, 2, 3]
    assert pager(10, 40) == [1, None, 8, 9, 10, 11, 12, None, 40]
    assert pager(2, 700)[-1] == 500  # no page past what the search ranks
