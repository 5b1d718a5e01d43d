"""Catch me up in the live sidebar: a participant who joins late clicks "Catch me up" and reads
a short summary of what was said, each point taking them to its line of the transcript. Real
Daphne (offline analyser), real transcript socket (its history), headless Chromium."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.sessions_app.analysis_support import store_lines

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000
MEETING = [
    (0.0, 6.0, "u-ann", "Ann", "Welcome everybody, today we plan the spring marketing budget."),
    (7.0, 12.0, "u-bob", "Bob", "The marketing budget for spring is forty thousand euros."),
    (13.0, 19.0, "u-ann", "Ann", "We should move part of the budget to the video campaign."),
    (20.0, 26.0, "u-cem", "Cem", "The video campaign needs a new agency before April."),
    (27.0, 33.0, "u-bob", "Bob", "I will ask three agencies for offers by Friday."),
    (34.0, 40.0, "u-ann", "Ann", "Good, then we decide on the agency next week."),
] + [
    (41.0 + 7 * i, 46.0 + 7 * i, "u-cem", "Cem", f"Item {i} of the agenda is the budget review.")
    for i in range(30)
]


def _screenshots(page, directory, name: str) -> None:
    directory.mkdir(exist_ok=True)
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        page.locator("#catch-up").scroll_into_view_if_needed()
        page.screenshot(path=str(directory / f"{name}-{width}.png"))
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways at {width} px"


def test_participant_clicks_catch_me_up_and_reads_the_summary_with_links_to_lines(
    daphne_server, launch_chromium, login_context, console_log, silence_wav, artifacts_dir,
    member, video_session,
):  # fmt: skip
    store_lines(video_session, MEETING)
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    page = login_context(launch_chromium(silence_wav), member).new_page()
    console_log(page, "late-joiner")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    # The transcript so far arrived (the socket's history).
    page.wait_for_selector('#transcript-lines li[data-utterance-id="a35"]', timeout=WAIT_MS)

    page.click("#btn-catch-up")

    page.wait_for_selector("#catch-up .catch-up-points li", timeout=WAIT_MS)
    assert page.url == url  # swapped in, not a page of its own
    points = page.locator("#catch-up .catch-up-points li")
    assert 1 <= points.count() <= 8
    summary = page.text_content("#catch-up .catch-up-result")
    assert "budget" in summary
    assert "Sentences picked by the offline analyser." in summary
    assert "from 36 transcript lines" in summary
    # A point's time takes the reader to its line of the live transcript.
    link = points.last.locator("a.catch-up-time")
    target = link.get_attribute("data-utterance-id")
    line = page.locator(f'#transcript-lines li[data-utterance-id="{target}"]')
    page.evaluate("() => { document.getElementById('transcript-scroll').scrollTop = 0; }")
    link.click()
    page.wait_for_selector(
        f'#transcript-lines li.catch-up-target[data-utterance-id="{target}"]', timeout=WAIT_MS
    )
    page.wait_for_timeout(800)  # smooth scrolling
    assert line.is_visible()
    assert page.url == url
    box = page.evaluate(
        """(id) => {
          const line = document.querySelector(`#transcript-lines li[data-utterance-id="${id}"]`);
          const pane = document.getElementById('transcript-scroll').getBoundingClientRect();
          const r = line.getBoundingClientRect();
          return r.top >= pane.top && r.bottom <= pane.bottom;
        }""",
        target,
    )
    assert box, "the line is not scrolled into the transcript's view"

    # Asking again within 30 s shows the same, shared summary.
    computed = page.text_content("#catch-up .catch-up-meta")
    page.click("#btn-catch-up")
    page.wait_for_selector("#catch-up .catch-up-points li", timeout=WAIT_MS)
    assert page.text_content("#catch-up .catch-up-meta") == computed

    _screenshots(page, artifacts_dir / "ask", "catch-up-live")
    page.click("#catch-up .catch-up-hide")
    assert page.locator("#catch-up .catch-up-result").count() == 0
    assert errors == []
