"""A member's open session page when an owner removes them: told at once, no reconnects.

Real Daphne (Redis channel layer, as in CI), real sockets, headless Chromium: the removal is
made in this process, as the owner's request on any Daphne would make it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import reverse

from spaces.services import member_remove

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REVOKED = "You no longer have access to this space."


def test_a_removed_members_session_page_says_so_and_stops(
    daphne_server, launch_chromium, login_context, console_log, silence_wav, artifacts_dir, owner,
    member, space, video_session,
):  # fmt: skip
    browser = launch_chromium(silence_wav)
    page = login_context(browser, member).new_page()
    console_log(page, "member")
    sockets: list = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(daphne_server.url + reverse("sessions:detail", args=[video_session.slug]))
    page.wait_for_selector("#transcript-status[data-status=NONE]")
    page.wait_for_function("() => document.querySelector('#video-grid') !== null")
    page.wait_for_timeout(500)  # the signalling socket is open too
    opened = len(sockets)
    assert opened >= 2, [s.url for s in sockets]

    # As a request on any Daphne would (Playwright's loop owns this thread).
    membership = space.memberships.get(user=member)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(member_remove, space=space, member=membership, by=owner).result()

    page.wait_for_selector(f"#transcript-error:has-text('{REVOKED}')", timeout=3000)
    page.wait_for_selector(f"#video-notice:has-text('{REVOKED}')", timeout=3000)
    page.wait_for_selector("#transcript-status:has-text('Disconnected')")
    assert page.is_disabled("#btn-transcription-start")
    page.wait_for_timeout(2000)
    page.screenshot(path=str(artifacts_dir / "access-revoked-1366.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(artifacts_dir / "access-revoked-390.png"), full_page=True)
    assert len(sockets) == opened, "a revoked page must not reconnect"
    assert all(s.is_closed() for s in sockets)
