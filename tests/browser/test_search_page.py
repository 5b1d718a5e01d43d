"""The search pages in Chromium: they fit a phone without sideways scrolling (in English and in
Russian), and a hit opens the finished page at its moment.

Screenshots at 1366 and 390 px go to ``artifacts/search/``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sessions_app.models import VideoSession
from tests.browser.pages import WAIT_MS, build_site, cookie_context, settle
from tests.browser.test_mobile_and_offline import _overflow
from tests.transcription.test_search import say, translate

pytestmark = pytest.mark.django_db(transaction=True)

LINES = [
    (12.0, "Grace Hopper", "Before we start: the roadmap draft is in the shared folder.", "en"),
    (95.5, "Alan Turing", "The hiring plan depends on the roadmap and on the budget.", "en"),
    (610.0, "Grace Hopper", "Let us move the roadmap review to Thursday afternoon.", "en"),
    (1805.0, "Анна Иванова", "Дорожную карту (roadmap) согласуем с клиентом в пятницу.", "ru"),
]


@pytest.fixture
def site(owner, member):
    site = build_site(owner, member)
    space = site.finished.space
    started = timezone.now() - timedelta(days=3)
    planning = VideoSession.objects.create(
        space=space,
        created_by=owner,
        title="Planning for the next quarter, with a rather long title that has to wrap",
        status=VideoSession.Status.ENDED,
        started_at=started,
        ended_at=started + timedelta(hours=1),
    )
    segments = say(planning, LINES)
    translate(segments[1], "ru", "План найма зависит от дорожной карты (roadmap) и бюджета.")
    return site


@pytest.fixture
def browser(launch_chromium, silence_wav):
    return launch_chromium(silence_wav)


@pytest.mark.parametrize("locale", ["en-US", "ru-RU"])
def test_the_search_pages_fit_a_phone_and_a_desktop(
    site, daphne_server, browser, login_context, artifacts_dir, locale
):
    shots = artifacts_dir / "search"
    shots.mkdir(exist_ok=True)
    suffix = "" if locale == "en-US" else "-ru"
    paths = {
        "space": f"/spaces/{site.space_slug}/search/?q=roadmap",
        "all-filters": "/search/?q=roadmap&speaker=grace&language=en",
        "empty": "/search/",
        "space-page": f"/spaces/{site.space_slug}/",  # its search box
    }
    problems = []
    for name, path in paths.items():
        for width in (1366, 390, 360):
            context = cookie_context(browser, login_context, site, "owner", width, locale)
            page = context.new_page()
            page.goto(daphne_server.url + path)
            settle(page, name)
            found = _overflow(page)
            if found["scroll"] > found["width"]:
                problems.append(f"{name} at {width} px{suffix}: {found}")
            if width != 360:
                page.screenshot(path=shots / f"{name}-{width}{suffix}.png", full_page=True)
            context.close()
    assert problems == []


def test_a_hit_opens_the_finished_page_at_its_moment(site, daphne_server, browser, login_context):
    context = cookie_context(browser, login_context, site, "owner", 1366)
    page = context.new_page()
    page.goto(f"{daphne_server.url}/spaces/{site.space_slug}/search/?q=thursday")
    page.wait_for_selector(".search-session", timeout=WAIT_MS)
    assert page.locator(".search-hits mark").first.inner_text() == "Thursday"

    page.locator("a.hit-time").first.click()
    page.wait_for_load_state("networkidle", timeout=WAIT_MS)

    assert page.url.endswith("#t-610")  # the turn holding the final said at 10:10
    target = page.locator(".turn:target")
    assert "roadmap review to Thursday" in target.inner_text()
    assert target.locator("mark").first.inner_text() == "Thursday"
    context.close()
