"""The usage pages with translation cost, in Chromium at 1366 and 390 px: nothing scrolls
sideways on a phone, and the translation amounts are on screen. Screenshots go to
``artifacts/usage-translation/``."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.browser import conftest as harness
from tests.factories import VideoSessionFactory
from tests.transcription.translation_usage_factories import make_translation
from tests.transcription.usage_factories import make_usage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The browser harness of tests/browser/ (its conftest), shared rather than copied.
artifacts_dir = harness.artifacts_dir
daphne_server = harness.daphne_server
launch_chromium = harness.launch_chromium
login_context = harness.login_context
playwright = harness.playwright
silence_wav = harness.silence_wav

WIDE, NARROW = 1366, 390


@pytest.fixture
def usage(settings, owner, space, video_session):
    """A week of a space's usage: transcription, live translation into three languages, and a
    session re-translated afterwards."""
    settings.TRANSLATION_COST_PER_MILLION_CHARACTERS = Decimal("20")
    now = timezone.now()
    for day, seconds, languages in (
        (6, 1800, {"ru": 48_200, "de": 12_400}),
        (3, 600, {"ru": 9_100}),
        (1, 3600, {"ru": 96_300, "de": 30_050, "uk": 5_200}),
    ):
        when = now - timedelta(days=day)
        row = make_usage(session=video_session, user=owner, seconds=seconds, created_at=when)
        for language, characters in languages.items():
            make_translation(usage=row, language=language, characters=characters, created_at=when)
    review = VideoSessionFactory(
        space=space, created_by=owner, title="Quarterly review with the regional teams"
    )
    make_translation(session=review, user=owner, language="fr", characters=240_000, provider="llm")
    return video_session


def _overflow(page) -> int:
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )


def _shoot(page, artifacts_dir, name: str) -> None:
    shots = artifacts_dir / "usage-translation"
    shots.mkdir(exist_ok=True)
    for width, height in ((WIDE, 900), (NARROW, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(100)
        page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
        assert _overflow(page) <= 0, f"{name} scrolls sideways at {width} px"


@pytest.mark.parametrize("locale", ["en-US", "ru-RU"])
def test_usage_pages_with_translation_fit_and_show_it(
    daphne_server, launch_chromium, silence_wav, login_context, artifacts_dir, owner, space,
    usage, locale,
):  # fmt: skip
    suffix = "" if locale == "en-US" else "-ru"
    browser = launch_chromium(silence_wav)
    context = login_context(browser, owner)
    if locale != "en-US":
        context.set_extra_http_headers({"Accept-Language": "ru"})
    page = context.new_page()
    pages = {
        "my-usage": "/me/usage/",
        "space-usage": f"/spaces/{space.slug}/usage/",
        "space-page": f"/spaces/{space.slug}/",
        "session-live": reverse("sessions:detail", args=[usage.slug]),
    }
    for name, path in pages.items():
        page.goto(daphne_server.url + path)
        page.wait_for_load_state("load")
        _shoot(page, artifacts_dir, f"{name}{suffix}")
    # The live page's cost box, the one a host reads during the session.
    page.goto(daphne_server.url + pages["session-live"])
    cell = page.locator("#session-cost dd.cost-translation")
    assert "153,600" in cell.text_content() or "153\u00a0600" in cell.text_content()


def test_the_admin_usage_pages_with_translation_fit(
    daphne_server, launch_chromium, silence_wav, login_context, artifacts_dir, usage,
):  # fmt: skip
    from tests.factories import UserFactory

    staff = UserFactory(is_staff=True, is_superuser=True)
    page = login_context(launch_chromium(silence_wav), staff).new_page()
    pages = {
        "admin-translation-usage": "/admin/transcription/translationusage/",
        "admin-transcription-usage": "/admin/transcription/transcriptionusage/",
        "admin-session": f"/admin/sessions_app/videosession/{usage.pk}/change/",
    }
    for name, path in pages.items():
        page.goto(daphne_server.url + path)
        page.wait_for_load_state("load")
        _shoot(page, artifacts_dir, name)
    page.goto(daphne_server.url + pages["admin-translation-usage"])
    assert page.text_content("#translation-total-characters") == "441,250"
