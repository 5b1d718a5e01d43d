"""Live transcript end to end: two Chromium processes with fake microphones, a real Daphne.

The speaker's fake microphone plays the speech fixture, the listener's plays silence; both pages
send browser-mode audio. The listener must see the speaker's words as final lines attributed to
the speaker, a late joiner (a reload) gets the history with no line twice, and ending the
session reaches the other page.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import pytest
from django.urls import reverse

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Words of the reference reading that a working pipeline recognises (see the fixture's README).
EXPECTED_WORDS = {
    "best",
    "times",
    "worst",
    "wisdom",
    "age",
    "foolishness",
    "epoch",
    "belief",
    "season",
    "light",
    "darkness",
    "spring",
    "hope",
    "winter",
    "despair",
}
TRANSCRIPT_TIMEOUT_S = 60
STATUS_TIMEOUT_MS = 20_000

READ_LINES_JS = """() => Array.from(document.querySelectorAll("[data-utterance-id]")).map((li) => ({
  id: li.dataset.utteranceId,
  final: !li.classList.contains("partial"),
  speaker: li.querySelector(".speaker").textContent,
  time: li.querySelector(".time").textContent,
  text: li.querySelector(".text").textContent,
}))"""


def _open_session_page(context, url: str, console_log, label: str):
    page = context.new_page()
    console_log(page, label)
    page.goto(url)
    # `connected`, `history` and the first `transcription_status` have arrived.
    page.wait_for_selector("#transcript-status[data-status=NONE]", timeout=STATUS_TIMEOUT_MS)
    return page


def _words_by(lines: list[dict], speaker: str) -> set[str]:
    words: set[str] = set()
    for line in lines:
        if line["final"] and line["speaker"] == speaker:
            words.update(re.findall(r"[a-z']+", line["text"].lower()))
    return words & EXPECTED_WORDS


def _server_log_tail(daphne_server, chars: int = 6000) -> str:
    return daphne_server.log()[-chars:]


def test_speakers_words_reach_other_participant_and_late_joiner_gets_history_once(
    daphne_server,
    launch_chromium,
    login_context,
    console_log,
    speech_wav,
    silence_wav,
    owner,
    member,
    video_session,
    artifacts_dir,
):
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    speaker = _open_session_page(
        login_context(launch_chromium(speech_wav), owner), url, console_log, "speaker"
    )
    listener = _open_session_page(
        login_context(launch_chromium(silence_wav), member), url, console_log, "listener"
    )

    speaker.click("#btn-transcription-start")
    for page in (speaker, listener):
        page.wait_for_selector("#transcript-status[data-status=ACTIVE]", timeout=STATUS_TIMEOUT_MS)
        page.wait_for_selector("#btn-transcription-stop:not([hidden])")
    # Both microphones go live; only the speaker's says anything.
    for page in (speaker, listener):
        page.click("#btn-mic")
        page.wait_for_selector("#btn-mic[aria-pressed=true]", timeout=STATUS_TIMEOUT_MS)
    mic_on_at = time.monotonic()

    first_final_s = None
    heard: set[str] = set()
    lines: list[dict] = []
    while time.monotonic() - mic_on_at < TRANSCRIPT_TIMEOUT_S:
        lines = listener.evaluate(READ_LINES_JS)
        if first_final_s is None and any(line["final"] for line in lines):
            first_final_s = time.monotonic() - mic_on_at
        heard = _words_by(lines, owner.display_name)
        if len(heard) >= 3:
            break
        listener.wait_for_timeout(250)
    words_s = time.monotonic() - mic_on_at
    speaker_stats = speaker.evaluate(
        "() => ({...window.Rooms.transcriptStats, sampleRate: window.Rooms.mic.sampleRate()})"
    )
    speaker.screenshot(path=str(artifacts_dir / "live-transcript-speaker.png"), full_page=True)
    listener.screenshot(path=str(artifacts_dir / "live-transcript-listener.png"), full_page=True)
    assert len(heard) >= 3, (
        f"after {TRANSCRIPT_TIMEOUT_S} s the listener saw {lines!r}; speaker audio "
        f"{speaker_stats!r}\n--- server log ---\n{_server_log_tail(daphne_server)}"
    )
    assert speaker_stats["framesSent"] > 0
    # The listener's silent microphone must not take the speaker's words.
    assert not any(line["speaker"] == member.display_name for line in lines), lines

    # A late joiner: the stored finals arrive as history, each line exactly once.
    seen_final_ids = {line["id"] for line in lines if line["final"]}
    listener.reload()
    listener.wait_for_selector("#transcript-status[data-status=ACTIVE]", timeout=STATUS_TIMEOUT_MS)
    listener.wait_for_function(
        "(n) => document.querySelectorAll('#transcript-lines [data-utterance-id]').length >= n",
        arg=len(seen_final_ids),
        timeout=STATUS_TIMEOUT_MS,
    )
    listener.wait_for_timeout(3000)  # live lines keep merging in on top of the history
    rejoined = listener.evaluate(READ_LINES_JS)
    duplicates = [i for i, n in Counter(line["id"] for line in rejoined).items() if n > 1]
    assert not duplicates, rejoined
    assert seen_final_ids <= {line["id"] for line in rejoined if line["final"]}
    listener.screenshot(path=str(artifacts_dir / "live-transcript-late-joiner.png"), full_page=True)

    speaker.click("#btn-transcription-stop")
    for page in (speaker, listener):
        page.wait_for_selector("#transcript-status[data-status=STOPPED]", timeout=STATUS_TIMEOUT_MS)

    # The host ends the session (after confirming): the other page is told once, stops
    # reconnecting, and turns into the session's finished page.
    speaker.click("#btn-end")
    speaker.click("#end-form button[type=submit]")
    listener.wait_for_selector("#transcript-status[data-status=ENDED]", timeout=STATUS_TIMEOUT_MS)
    assert listener.is_visible("#video-notice[data-reason=ended]:has-text('The session has ended')")
    listener.wait_for_selector("body.session-finished-page", timeout=STATUS_TIMEOUT_MS)

    (artifacts_dir / "live-transcript-timing.json").write_text(
        json.dumps(
            {
                "first_final_s": first_final_s,
                "three_expected_words_s": round(words_s, 2),
                "words": sorted(heard),
                "speaker_audio": speaker_stats,
                "final_lines": len(seen_final_ids),
            },
            indent=2,
        )
    )
