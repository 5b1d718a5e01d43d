"""The live session page around the call: who is in it, what it costs, the media buttons, ending
it. Real Daphne, real sockets, headless Chromium (one process per person, fake camera and
microphone); peer-to-peer video, browser-mode transcription.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import reverse

from sessions_app.models import Participant, VideoSession
from transcription.models import TranscriptionUsage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000
METER_TIMEOUT_S = 60  # the local engine and two Chromiums share two busy cores


def _open(context, url: str, console_log, label: str):
    page = context.new_page()
    console_log(page, label)
    page.goto(url)
    # Joined, and the transcript socket said where the transcription stands.
    page.wait_for_selector('#transcript-status:not([data-status=""])', timeout=WAIT_MS)
    return page


def _listed(page, user, *, present: bool) -> None:
    state = "true" if present else "false"
    page.wait_for_selector(
        f'#participant-list li[data-identity="{user.identity}"][data-present={state}]',
        timeout=WAIT_MS,
    )


def _here(page, count: int) -> None:
    page.wait_for_selector(f"#participant-count:text-is('{count} here')", timeout=WAIT_MS)


def _in_another_thread(function, **kwargs):
    """As a request on any Daphne would (Playwright's loop owns this thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, **kwargs).result()


def _screenshots(page, artifacts_dir, name: str) -> None:
    page.set_viewport_size({"width": 1366, "height": 900})
    page.screenshot(path=str(artifacts_dir / f"{name}-1366.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(artifacts_dir / f"{name}-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def test_participants_list_follows_who_joins_and_leaves_live(
    daphne_server, launch_chromium, login_context, console_log, silence_wav, artifacts_dir, owner,
    member, video_session,
):  # fmt: skip
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    host = _open(login_context(launch_chromium(silence_wav), owner), url, console_log, "host")
    _listed(host, owner, present=True)
    _here(host, 1)
    assert "(you)" in host.text_content(f'#participant-list li[data-identity="{owner.identity}"]')

    guest_browser = launch_chromium(silence_wav)
    guest = _open(login_context(guest_browser, member), url, console_log, "guest")
    # The host's page learns it from the server, without a reload.
    _listed(host, member, present=True)
    _here(host, 2)
    _listed(guest, owner, present=True)
    _listed(guest, member, present=True)
    _here(guest, 2)
    assert host.text_content("#participant-news") == "Max Member joined"
    _screenshots(host, artifacts_dir, "live-page-host")
    _screenshots(guest, artifacts_dir, "live-page-guest")

    # Leaving takes the guest off the host's list (and out of the database's "present").
    guest.click("#btn-leave")
    guest.wait_for_url(re.compile(r"/spaces/"), timeout=WAIT_MS)
    _listed(host, member, present=False)
    _here(host, 1)
    assert Participant.objects.get(session=video_session, identity=member.identity).left_at

    # Coming back (another page of the same person) lists them again.
    guest.goto(url)
    _listed(host, member, present=True)
    _here(host, 2)

    # A second tab of the guest closing does not take them off: their first page is still here.
    second = _open(login_context(guest_browser, member), url, console_log, "guest-tab")
    second.close()
    host.wait_for_timeout(1500)  # what a wrong "left" would need to arrive (bounded: it must not)
    _listed(host, member, present=True)
    _here(host, 2)

    # Closing the guest's last page does.
    guest.close()
    _listed(host, member, present=False)
    _here(host, 1)


def test_media_buttons_say_whether_they_are_on_and_the_camera_choice_is_kept(
    daphne_server, launch_chromium, login_context, console_log, silence_wav, owner, video_session,
):  # fmt: skip
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    context = login_context(launch_chromium(silence_wav), owner)
    page = _open(context, url, console_log, "page")

    page.wait_for_selector("#btn-cam[aria-pressed=true]:text-is('Camera on')", timeout=WAIT_MS)
    page.wait_for_selector("#btn-mic[aria-pressed=false]:text-is('Mic off'):enabled")
    page.click("#btn-mic")
    page.wait_for_selector("#btn-mic[aria-pressed=true]:text-is('Mic on')", timeout=WAIT_MS)
    page.click("#btn-cam")
    page.wait_for_selector("#btn-cam[aria-pressed=false]:text-is('Camera off')", timeout=WAIT_MS)
    assert page.evaluate(
        "() => !document.querySelector('#video-grid figure.tile.self video').srcObject"
    )

    # Whoever turned the camera off comes back with it off, and can turn it on.
    page.reload()
    page.wait_for_selector("#btn-cam[aria-pressed=false]:text-is('Camera off'):enabled")
    page.wait_for_selector("#btn-mic[aria-pressed=false]:text-is('Mic off')")
    page.click("#btn-cam")
    page.wait_for_selector("#btn-cam[aria-pressed=true]:text-is('Camera on')", timeout=WAIT_MS)


def test_ending_asks_first_and_takes_the_guest_to_the_finished_page_once(
    daphne_server, launch_chromium, login_context, console_log, silence_wav, artifacts_dir, owner,
    member, video_session,
):  # fmt: skip
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    host = _open(login_context(launch_chromium(silence_wav), owner), url, console_log, "host")
    guest = _open(login_context(launch_chromium(silence_wav), member), url, console_log, "guest")
    assert guest.locator("#btn-end").count() == 0
    for page in (host, guest):  # both in the call, so both sockets will hear the end
        page.wait_for_selector("#video-grid figure.tile:not(.self)", timeout=WAIT_MS)

    host.click("#btn-end")
    host.wait_for_selector("#end-dialog[open]")
    _screenshots(host, artifacts_dir, "live-page-end-confirm")
    host.click("#btn-end-cancel")
    host.wait_for_selector("#end-dialog", state="hidden")
    host.wait_for_timeout(500)  # a wrong end would reach the guest by now (bounded)
    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.LIVE
    assert guest.is_hidden("#video-notice")

    host.click("#btn-end")
    host.click("#end-form button[type=submit]")
    host.wait_for_selector("body.session-finished-page", timeout=WAIT_MS)

    # The guest is told once, then shown the finished page of the session.
    guest.wait_for_selector("#video-notice[data-reason=ended]", timeout=WAIT_MS)
    said = guest.evaluate("() => document.body.innerText.match(/session has ended/gi).length")
    assert said == 1, guest.evaluate("() => document.body.innerText")
    assert guest.text_content("#transcript-status") == "Ended"
    assert guest.locator("#video-grid figure.tile").count() == 0
    _screenshots(guest, artifacts_dir, "live-page-ended-guest")
    guest.wait_for_selector("body.session-finished-page", timeout=WAIT_MS)
    assert guest.url == url
    guest.wait_for_timeout(1000)  # whatever the closing sockets still did has been logged
    log = daphne_server.log()
    assert "Traceback" not in log and "closed protocol" not in log, log[-4000:]


@pytest.mark.daphne_env(TRANSCRIPTION_USAGE_CHECKPOINT_SECONDS="1")
def test_the_cost_box_follows_the_meter_while_transcribing(
    daphne_server, launch_chromium, login_context, console_log, speech_wav, silence_wav, owner,
    member, video_session, artifacts_dir,
):  # fmt: skip
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    context = login_context(launch_chromium(speech_wav), owner)
    page = context.new_page()
    console_log(page, "host")
    page.clock.install()  # time flows as usual; the test can jump a minute ahead
    page.goto(url)
    page.wait_for_selector("#transcript-status[data-status=NONE]", timeout=WAIT_MS)
    cost = "#session-cost .cost-table dd"
    assert "(0 min in 0 runs)" in page.locator(cost).first.text_content()
    assert page.text_content(".cost-note") == "Updated every minute while transcribing."

    page.click("#btn-transcription-start")
    page.wait_for_selector("#transcript-status[data-status=ACTIVE]", timeout=WAIT_MS)
    page.click("#btn-mic")
    # A run starting shows at once.
    page.wait_for_selector(f"{cost}:has-text('(0 min in 1 run)')", timeout=WAIT_MS)

    # The meter is checkpointed while the run goes on; the box reads it every minute.
    deadline = time.monotonic() + METER_TIMEOUT_S
    while not TranscriptionUsage.objects.filter(session=video_session, billed_minutes=1).exists():
        assert time.monotonic() < deadline, "the meter never counted a minute"
        page.wait_for_timeout(250)
    page.clock.fast_forward("01:01")
    page.wait_for_selector(f"{cost}:has-text('(1 min in 1 run)')", timeout=WAIT_MS)
    # One minute at the default 0.01 a minute, written as the page writes money.
    assert re.fullmatch(r"\$?0\.01(00)?", page.locator(cost).last.text_content()), page.locator(
        cost
    ).last.text_content()
    assert (
        page.locator(cost).first.text_content().startswith(page.locator(cost).last.text_content())
    )
    _screenshots(page, artifacts_dir, "live-page-cost")

    page.click("#btn-transcription-stop")
    page.wait_for_selector("#transcript-status[data-status=STOPPED]", timeout=WAIT_MS)
    page.wait_for_selector(f"{cost}:has-text('(1 min in 1 run)')", timeout=WAIT_MS)

    # A member may start and stop the transcription too, and sees no cost box (nor End).
    guest = _open(login_context(launch_chromium(silence_wav), member), url, console_log, "guest")
    assert guest.locator("#session-cost").count() == 0
    assert guest.locator("#btn-end").count() == 0
    guest.wait_for_selector("#btn-transcription-start:enabled", timeout=WAIT_MS)
