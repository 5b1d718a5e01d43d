"""Correcting a transcript in Chromium while another browser watches it change (issue 14).

Two browsers (two Chromium processes, two people) on the finished page of a real Daphne: the
member who attended corrects a sentence and gives another to the host; the host's page shows
both without a reload. Then the host sees the change in the history and reverts it.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from sessions_app.models import VideoSession
from tests.transcription.transcripts import end_with_transcript
from transcription.models import TranscriptSegment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def finished(video_session, owner, member) -> VideoSession:
    end_with_transcript(
        video_session,
        [owner, member],
        [
            (1.0, 3.0, owner.identity, owner.name, "we will then direct the other white"),
            (3.5, 6.0, "", "", "the budget is approved"),
        ],
    )
    TranscriptSegment.objects.filter(session=video_session, utterance_id="u0").update(
        confidence=0.5
    )
    return video_session


def test_a_correction_shows_on_another_browser_and_the_host_reverts_it(
    daphne_server, launch_chromium, login_context, console_log, silence_wav, artifacts_dir,
    owner, member, finished,
):  # fmt: skip
    url = daphne_server.url + reverse("sessions:detail", args=[finished.slug])
    watcher = login_context(launch_chromium(silence_wav), owner).new_page()
    editor = login_context(launch_chromium(silence_wav), member).new_page()
    console_log(watcher, "host")
    console_log(editor, "member")
    for page in (watcher, editor):
        page.goto(url)
        page.wait_for_selector("#transcript[data-live=on]")
    assert watcher.get_attribute(".seg[data-uid=u0]", "class") == "seg unsure"
    assert "Transcribed by the offline Whisper engine" in watcher.inner_text("#engine-note")

    # The member corrects the misheard sentence.
    editor.click(".seg[data-uid=u0]")
    editor.fill(".segment-editor textarea", "we will then draft the other reply")
    editor.click(".segment-editor button[type=submit]")
    editor.wait_for_selector(".seg[data-uid=u0].edited")

    # The host's page shows it at once, without a reload.
    watcher.wait_for_selector(
        ".seg[data-uid=u0]:has-text('we will then draft the other reply')", timeout=5000
    )
    assert "edited" in watcher.get_attribute(".seg[data-uid=u0]", "class")

    # The member gives the room's sentence to the member: the host is told to regroup.
    editor.click(".seg[data-uid=u1]")
    editor.select_option(".segment-editor select", member.identity)
    editor.click(".segment-editor button[type=submit]")
    watcher.wait_for_selector("#edit-notice:has-text('Speakers changed')", timeout=5000)
    watcher.screenshot(path=str(artifacts_dir / "transcript-edit-watcher-1366.png"), full_page=True)

    # The host reloads, sees the history, and reverts the text correction.
    watcher.reload()
    watcher.wait_for_selector("#changes")
    watcher.click("#changes summary")
    text_change = watcher.locator(".change-list li", has_text="Text corrected")
    text_change.locator(".change-revert").click()
    watcher.wait_for_selector(".seg[data-uid=u0]:has-text('direct the other white')")
    editor.wait_for_selector(".seg[data-uid=u0]:has-text('direct the other white')", timeout=5000)
    assert TranscriptSegment.objects.get(session=finished, utterance_id="u0").revision == 2
    watcher.set_viewport_size({"width": 390, "height": 844})
    watcher.screenshot(path=str(artifacts_dir / "transcript-edit-watcher-390.png"), full_page=True)


def test_a_stale_correction_keeps_the_draft_and_shows_the_current_text(
    daphne_server, launch_chromium, login_context, silence_wav, owner, member, finished
):
    url = daphne_server.url + reverse("sessions:detail", args=[finished.slug])
    browser = launch_chromium(silence_wav)
    first = login_context(browser, owner).new_page()
    second = login_context(browser, member).new_page()
    for page in (first, second):
        page.goto(url)
        page.wait_for_selector("#transcript[data-live=on]")
    second.click(".seg[data-uid=u1]")
    second.fill(".segment-editor textarea", "the budget was approved")

    first.click(".seg[data-uid=u1]")
    first.fill(".segment-editor textarea", "the budget is approved.")
    first.click(".segment-editor button[type=submit]")
    first.wait_for_selector(".seg[data-uid=u1].edited")

    # The second editor hears of it live; saving now replaces it on purpose, nothing lost.
    second.wait_for_selector(".segment-editor:has-text('Somebody just changed this sentence')")
    assert second.input_value(".segment-editor textarea") == "the budget was approved"
    second.click(".segment-editor button[type=submit]")
    second.wait_for_selector(".seg[data-uid=u1]:has-text('the budget was approved')")
    segment = TranscriptSegment.objects.get(session=finished, utterance_id="u1")
    assert (segment.text, segment.revision) == ("the budget was approved", 2)
    assert [r.after["text"] for r in segment.revisions.order_by("number")] == [
        "the budget is approved.",
        "the budget was approved",
    ]
