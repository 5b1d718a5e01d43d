"""The transcript sidebar (static/js/transcript.js) against a scripted transcript WebSocket.

The page comes from a real Daphne; Playwright replaces its transcript WebSocket with a fake
that speaks docs/transcript-protocol.md, so each test can play exact message sequences, close
codes and statuses, and see exactly what the page sends back.
"""

from __future__ import annotations

import json
import re
import struct
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 10_000


def segment(uid: str, start: float, text: str, *, final: bool = True, speaker: str | None = "Ann"):
    return {
        "utterance_id": uid,
        "text": text,
        "is_final": final,
        "speaker_identity": speaker and speaker.lower(),
        "speaker_name": speaker,
        "start": start,
        "end": start + 2.0,
        "language": "en",
    }


def status(value: str, mode: str | None = "BROWSER", error: str | None = None) -> dict[str, Any]:
    return {
        "type": "transcription_status",
        "status": value,
        "mode": mode,
        "run_id": 1 if value != "NONE" else None,
        "provider": "local",
        "error": error,
        "error_code": "provider_error" if error else None,
    }


class FakeTranscriptSocket:
    """Answers every transcript WebSocket of the page: ``connected``, ``history``, a status."""

    def __init__(self, page, *, history: list[dict], first_status: dict[str, Any]) -> None:
        self.history = history
        self.first_status = first_status
        self.connections: list[Any] = []
        self.received: list[tuple[float, str | bytes]] = []
        page.route_web_socket(re.compile(r"/ws/sessions/[^/]+/transcript/$"), self._accept)

    def _accept(self, ws) -> None:
        self.connections.append(ws)
        ws.on_message(lambda message: self.received.append((time.monotonic(), message)))
        ws.send(json.dumps({"type": "connected", "session": "s", "identity": "u", "name": "U"}))
        ws.send(json.dumps({"type": "history", "segments": self.history}))
        ws.send(json.dumps(self.first_status))

    def send(self, message: dict[str, Any]) -> None:
        self.connections[-1].send(json.dumps(message))

    def close(self, code: int) -> None:
        self.connections[-1].close(code=code)

    def frames(self) -> list[tuple[float, bytes]]:
        return [(t, m) for t, m in self.received if isinstance(m, bytes)]

    def texts(self) -> list[dict[str, Any]]:
        return [json.loads(m) for _, m in self.received if isinstance(m, str)]


LINES_JS = """() => Array.from(document.querySelectorAll("[data-utterance-id]")).map((li) => ({
  id: li.dataset.utteranceId,
  list: li.parentElement.id,
  partial: li.classList.contains("partial"),
  speaker: li.querySelector(".speaker").textContent,
  time: li.querySelector(".time").textContent,
  text: li.querySelector(".text").textContent,
}))"""


@pytest.fixture
def open_sidebar(
    daphne_server, launch_chromium, login_context, console_log, speech_wav, owner, video_session
) -> Callable[..., tuple[Any, FakeTranscriptSocket]]:
    """``open_sidebar(history=[...], first_status={...})`` → (page, fake socket)."""
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    browser = launch_chromium(speech_wav)

    def open_page(*, history=(), first_status=None):
        page = login_context(browser, owner).new_page()
        console_log(page, "page")
        fake = FakeTranscriptSocket(
            page, history=list(history), first_status=first_status or status("NONE", None)
        )
        page.goto(url)
        page.wait_for_selector("#transcript-status[data-status]:not([data-status=''])")
        return page, fake

    return open_page


def _wait_until(page, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        page.wait_for_timeout(50)


def test_history_partials_and_finals_merge_once_in_start_order(open_sidebar):
    page, fake = open_sidebar(
        history=[segment("u1", 1.0, "one"), segment("u2", 5.2, "two", speaker=None)],
        first_status=status("ACTIVE"),
    )
    fake.send({"type": "transcript", **segment("u3", 69.0, "it was", final=False)})
    fake.send({"type": "transcript", **segment("u3", 69.0, "it was the best", final=False)})
    page.wait_for_selector("#transcript-partials [data-utterance-id=u3]:has-text('the best')")
    assert page.locator("#transcript-lines [data-utterance-id=u3]").count() == 0

    fake.send({"type": "transcript", **segment("u3", 69.0, "it was the best of times")})
    fake.send({"type": "transcript", **segment("u3", 69.0, "a late partial", final=False)})
    fake.send({"type": "transcript", **segment("u2", 5.2, "a final never changes")})
    fake.send({"type": "history", "segments": [segment("u1", 1.0, "one")]})  # a reconnect's
    fake.send({"type": "transcript", **segment("u0", 0.4, "zero", speaker="Bob")})
    page.wait_for_selector("[data-utterance-id=u0]")

    assert page.evaluate(LINES_JS) == [
        {"id": "u0", "list": "transcript-lines", "partial": False, "speaker": "Bob",
         "time": "00:00", "text": "zero"},
        {"id": "u1", "list": "transcript-lines", "partial": False, "speaker": "Ann",
         "time": "00:01", "text": "one"},
        {"id": "u2", "list": "transcript-lines", "partial": False, "speaker": "Room",
         "time": "00:05", "text": "two"},
        {"id": "u3", "list": "transcript-lines", "partial": False, "speaker": "Ann",
         "time": "01:09", "text": "it was the best of times"},
    ]  # fmt: skip
    # Finals are announced politely (history is added silently, then the region goes live
    # again); partials live outside the live region.
    page.wait_for_selector("#transcript-lines[aria-live=polite]")
    assert page.get_attribute("#transcript-partials", "aria-live") is None


def test_reconnects_after_a_drop_and_stops_when_the_session_ends(open_sidebar, video_session):
    page, fake = open_sidebar(history=[segment("u1", 1.0, "one")])
    fake.close(1011)
    page.wait_for_selector("#transcript-status:has-text('Reconnecting')")
    _wait_until(page, lambda: len(fake.connections) == 2)  # first retry after 0.25-0.5 s
    page.wait_for_selector("#transcript-status[data-status=NONE]")
    assert [line["id"] for line in page.evaluate(LINES_JS)] == ["u1"]

    # Ended for real, so that the page it turns into is the finished one.
    type(video_session).objects.filter(pk=video_session.pk).update(status="ENDED")
    fake.send({"type": "session_ended"})
    fake.close(4004)
    # Said once, on the page; the sidebar's status is short.
    page.wait_for_selector("#transcript-status[data-status=ENDED]:text-is('Ended')")
    assert page.is_visible("#video-notice[data-reason=ended]:has-text('The session has ended')")
    assert page.is_hidden("#transcript-error")
    assert page.is_disabled("#btn-transcription-start")
    page.wait_for_selector("body.session-finished-page", timeout=WAIT_MS)
    assert len(fake.connections) == 2


@pytest.mark.parametrize(
    ("code", "message"),
    [(4003, "do not have access"), (4001, "not signed in")],
)
def test_no_reconnect_when_refused(open_sidebar, code, message):
    page, fake = open_sidebar()
    fake.close(code)
    page.wait_for_selector(f"#transcript-error:has-text('{message}')")
    page.wait_for_timeout(2000)
    assert len(fake.connections) == 1


def test_failed_run_and_error_messages_are_shown(open_sidebar):
    page, fake = open_sidebar(first_status=status("ACTIVE"))
    page.wait_for_selector("#btn-transcription-stop:visible")
    fake.send(status("FAILED", error="The speech service is unreachable."))
    page.wait_for_selector(
        "#transcript-error:has-text('Transcription failed: The speech service is unreachable.')"
    )
    assert page.is_enabled("#btn-transcription-start")
    assert page.is_hidden("#btn-transcription-stop")
    fake.send({"type": "error", "code": "quota", "message": "Transcription minutes used up."})
    page.wait_for_selector("#transcript-error:has-text('Transcription minutes used up.')")


def test_start_posts_with_the_csrf_token_and_shows_refusals(open_sidebar):
    page, _ = open_sidebar()
    requests = []

    def refuse(route):
        requests.append(route.request)
        route.fulfill(
            status=409,
            content_type="application/json",
            body=json.dumps({"detail": "Transcription is already running.", "code": "conflict"}),
        )

    page.route("**/transcription/start", refuse)
    page.click("#btn-transcription-start")
    page.wait_for_selector("#transcript-error:has-text('Transcription is already running.')")
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    assert requests[0].method == "POST"
    assert requests[0].headers["x-csrftoken"] == csrf
    assert page.is_enabled("#btn-transcription-start")


def _frames_between(fake, start: float, end: float) -> list[bytes]:
    return [m for t, m in fake.frames() if start <= t < end]


def test_microphone_frames_flow_only_while_browser_run_is_active_and_unmuted(open_sidebar):
    page, fake = open_sidebar(first_status=status("ACTIVE"))
    page.wait_for_timeout(500)
    assert fake.frames() == []  # the microphone starts muted

    page.click("#btn-mic")
    page.wait_for_selector("#btn-mic[aria-pressed=true]")
    page.wait_for_timeout(2500)
    frames = [m for _, m in fake.frames()]
    assert len(frames) >= 40, len(frames)
    # 40 ms of PCM16LE at 16 kHz; after a stall of the page, a burst goes as one larger frame.
    assert Counter(len(f) for f in frames).most_common(1)[0][0] == 1280
    assert all(len(f) % 1280 == 0 for f in frames)
    samples = [abs(s) for f in frames for s in struct.unpack(f"<{len(f) // 2}h", f)]
    assert max(samples) > 1000  # the speech fixture, not silence
    times = [t for t, _ in fake.frames()]
    assert max(sum(1 for u in times if t <= u < t + 1) for t in times) <= 40

    for stopping in (status("STOPPED"), status("ACTIVE", "SERVER")):
        fake.send(stopping)
        page.wait_for_timeout(300)
        mark = time.monotonic()
        page.wait_for_timeout(1000)
        assert _frames_between(fake, mark, time.monotonic()) == []

    fake.send(status("ACTIVE"))
    page.wait_for_timeout(1000)
    assert _frames_between(fake, time.monotonic() - 0.5, time.monotonic())
    page.click("#btn-mic")
    page.wait_for_selector("#btn-mic[aria-pressed=false]")
    page.wait_for_timeout(300)
    mark = time.monotonic()
    page.wait_for_timeout(1000)
    assert _frames_between(fake, mark, time.monotonic()) == []
    assert page.evaluate("() => window.Rooms.micStream instanceof MediaStream")


def test_active_speakers_are_reported(open_sidebar):
    page, fake = open_sidebar(first_status=status("ACTIVE", "SERVER"))
    page.evaluate(
        """() => document.dispatchEvent(
            new CustomEvent("rooms:active-speakers", {detail: ["ann", "bob"]}))"""
    )
    _wait_until(page, lambda: any(m["type"] == "active_speakers" for m in fake.texts()))
    assert {"type": "active_speakers", "speakers": ["ann", "bob"]} in fake.texts()


def test_follows_the_bottom_until_the_reader_scrolls_up(open_sidebar):
    history = [segment(f"u{i:02d}", i * 3.0, f"line number {i}") for i in range(40)]
    page, fake = open_sidebar(history=history, first_status=status("ACTIVE"))
    at_bottom = """() => { const s = document.getElementById("transcript-scroll");
        return s.scrollHeight - s.scrollTop - s.clientHeight < 2; }"""
    page.wait_for_function(at_bottom, timeout=WAIT_MS)
    assert page.is_hidden("#transcript-jump")

    page.evaluate("() => { document.getElementById('transcript-scroll').scrollTop = 0; }")
    page.wait_for_selector("#transcript-jump:visible")
    fake.send({"type": "transcript", **segment("u99", 200.0, "a new line")})
    page.wait_for_selector("[data-utterance-id=u99]")
    page.wait_for_timeout(200)
    assert page.evaluate("() => document.getElementById('transcript-scroll').scrollTop") == 0

    page.click("#transcript-jump")
    page.wait_for_function(at_bottom, timeout=WAIT_MS)
    assert page.is_hidden("#transcript-jump")
    fake.send({"type": "transcript", **segment("u100", 203.0, "another line")})
    page.wait_for_selector("[data-utterance-id=u100]")
    page.wait_for_function(at_bottom, timeout=WAIT_MS)
