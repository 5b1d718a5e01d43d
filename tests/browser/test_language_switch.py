"""The interface language in a real browser: the switcher in the top bar changes every page,
a signed-in choice follows the person to another browser, and every page, once its scripts
have run, shows no English text of ours in Russian (screenshots at 1366 px go to
``artifacts/pages/*-ru-1366.png``)."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from django.urls import reverse

from tests.browser.pages import WAIT_MS, Site, build_site, cookie_context, pages, settle
from tests.i18n.test_pages_ru import english_left

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(owner, member) -> Site:
    return build_site(owner, member, "ru")


@pytest.fixture
def browser(launch_chromium, silence_wav):
    return launch_chromium(silence_wav)


def test_the_top_bar_switches_the_language_of_a_signed_out_visitor(daphne_server, browser):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(daphne_server.url + reverse("account_login") + "?next=/spaces/")
    assert page.locator("html").get_attribute("lang") == "en"

    page.locator(".topbar button[name=language][value=ru]").click()
    page.wait_for_selector("html[lang=ru]", timeout=WAIT_MS)

    assert unquote(page.url).endswith("/accounts/login/?next=/spaces/")  # same page and next
    assert page.locator(".topbar").get_by_text("Войти").count() >= 1
    page.goto(daphne_server.url + reverse("account_signup"))
    assert page.locator("html").get_attribute("lang") == "ru"  # remembered

    page.locator(".topbar button[name=language][value=en]").click()
    page.wait_for_selector("html[lang=en]", timeout=WAIT_MS)
    assert page.locator(".topbar").get_by_text("Sign in").count() >= 1
    context.close()


def test_a_signed_in_choice_follows_the_person_to_another_browser(
    site: Site, daphne_server, browser, login_context
):
    first = cookie_context(browser, login_context, site, "owner", 1366, "en-US")
    page = first.new_page()
    page.goto(daphne_server.url + reverse("spaces:list"))
    page.locator(".topbar button[name=language][value=ru]").click()
    page.wait_for_selector("html[lang=ru]", timeout=WAIT_MS)
    first.close()

    # A second browser with an English Accept-Language and no language cookie.
    second = cookie_context(browser, login_context, site, "owner", 1366, "en-US")
    page = second.new_page()
    page.goto(daphne_server.url + reverse("spaces:list"))
    assert page.locator("html").get_attribute("lang") == "ru"
    second.close()


def test_every_page_in_russian_shows_no_english_of_ours(
    site: Site, daphne_server, browser, login_context, artifacts_dir
):
    shots = artifacts_dir / "pages"
    shots.mkdir(exist_ok=True)
    left = {}
    for name, who, path in pages(site):
        if name == "api-docs":
            continue  # Swagger UI's own interface is English-only
        context = cookie_context(browser, login_context, site, who, 1366, "ru-RU")
        page = context.new_page()
        page.goto(daphne_server.url + path)
        settle(page, name)
        page.screenshot(path=str(shots / f"{name}-ru-1366.png"), full_page=True)
        assert page.locator("html").get_attribute("lang") == "ru", name
        found = english_left(page.content(), ("django", "djangojs"))
        if found:
            left[name] = found
        context.close()
    assert left == {}
