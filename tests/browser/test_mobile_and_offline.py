"""Every page on a phone, and every page offline.

- At 360 and 390 px wide no page scrolls sideways (``scrollWidth`` of the document is the
  viewport's), the top bar spans the page, and the live session page puts the transcript
  under the video.
- With every request that leaves the server refused, each page (the API docs included) loads
  completely: nothing comes from a CDN or a font service.

Screenshots of each page at 1366 and 390 px go to ``artifacts/pages/``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from tests.browser.pages import (
    NARROW,
    WAIT_MS,
    Site,
    build_site,
    cookie_context,
    pages,
    settle,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(owner, member) -> Site:
    return build_site(owner, member)


@pytest.fixture
def browser(launch_chromium, silence_wav):
    return launch_chromium(silence_wav)


def _overflow(page) -> dict:
    return page.evaluate(
        """() => {
          const doc = document.documentElement;
          const width = doc.clientWidth;
          const wide = [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > width + 1)
            .filter(el => !el.closest('[data-scrolls]'))
            .slice(0, 8)
            .map(el => `${el.tagName.toLowerCase()}.${[...el.classList].join('.')}#${el.id}`
                       + ` ${Math.round(el.getBoundingClientRect().right)}`);
          const bar = document.querySelector('.topbar');
          return {
            scroll: Math.max(doc.scrollWidth, document.body.scrollWidth),
            width,
            wide,
            bar: bar ? Math.round(bar.getBoundingClientRect().width) : null,
          };
        }"""
    )


@pytest.mark.parametrize("locale", ["en-US", "ru-RU"])
def test_every_page_fits_a_phone_without_sideways_scrolling(
    site, daphne_server, browser, login_context, artifacts_dir, locale
):
    """In English and in Russian (whose words are longer)."""
    shots = artifacts_dir / "pages"
    shots.mkdir(exist_ok=True)
    suffix = "" if locale == "en-US" else "-ru"
    problems = []
    for name, who, path in pages(site):
        for width in NARROW:
            context = cookie_context(browser, login_context, site, who, width, locale)
            page = context.new_page()
            page.goto(daphne_server.url + path)
            settle(page, name)
            found = _overflow(page)
            if width == 390:
                page.screenshot(path=str(shots / f"{name}{suffix}-390.png"), full_page=True)
            if found["scroll"] > found["width"]:
                problems.append(f"{name} at {width}px: {found}")
            if found["bar"] is not None and found["bar"] < found["width"]:
                problems.append(f"{name} at {width}px: the top bar is {found['bar']} px wide")
            context.close()
    assert not problems, "\n".join(problems)


def test_the_live_transcript_goes_under_the_video_on_a_phone(
    site, daphne_server, browser, login_context
):
    context = cookie_context(browser, login_context, site, "owner", 390)
    page = context.new_page()
    page.goto(daphne_server.url + reverse("sessions:detail", args=[site.live.slug]))
    page.wait_for_selector(".transcript", timeout=WAIT_MS)

    stage = page.locator(".stage").bounding_box()
    transcript = page.locator(".transcript").bounding_box()

    assert transcript["y"] >= stage["y"] + stage["height"] - 1, (stage, transcript)
    assert transcript["width"] <= 390


def test_every_page_works_with_nothing_but_this_server(
    site, daphne_server, browser, login_context, artifacts_dir
):
    """External requests are refused; the test fails on any that a page makes."""
    shots = artifacts_dir / "pages"
    shots.mkdir(exist_ok=True)
    ours = urlsplit(daphne_server.url).netloc
    visited = [
        *pages(site),
        ("admin", "owner", reverse("admin:index")),
        ("admin-usage", "owner", reverse("admin:transcription_transcriptionusage_changelist")),
        (
            "admin-analysis",
            "owner",
            reverse("admin:sessions_app_sessionanalysis_change", args=[site.finished.analysis.pk]),
        ),
    ]
    for name, who, path in visited:
        context = cookie_context(browser, login_context, site, who, 1366)
        leaving: list[str] = []

        def refuse_foreign(route, request, leaving=leaving):
            if urlsplit(request.url).netloc == ours or request.url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                leaving.append(request.url)
                route.abort()

        context.route("**/*", refuse_foreign)
        page = context.new_page()
        failed: list[str] = []
        page.on("requestfailed", lambda request, failed=failed: failed.append(request.url))
        page.on("websocket", lambda ws, leaving=leaving: (
            None if urlsplit(ws.url).netloc == ours else leaving.append(ws.url)
        ))  # fmt: skip
        page.goto(daphne_server.url + path)
        settle(page, name)
        page.screenshot(path=str(shots / f"{name}-1366.png"), full_page=True)
        assert not leaving, f"{name} asked another host for {leaving}"
        assert not [u for u in failed if urlsplit(u).netloc == ours], (name, failed)
        context.close()


def test_the_api_docs_render_from_our_static_files(site, daphne_server, browser, login_context):
    context = cookie_context(browser, login_context, site, "owner", 1366)
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(daphne_server.url + reverse("api-docs"))

    page.wait_for_selector(".swagger-ui .info .title:has-text('Rooms API')", timeout=WAIT_MS)
    page.wait_for_selector(".opblock-tag-section", timeout=WAIT_MS)

    assert page.locator(".opblock").count() > 20  # the operations are listed
    assert not errors, errors  # no Content-Security-Policy violation, no script error
