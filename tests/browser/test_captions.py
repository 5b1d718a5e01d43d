"""Captions in each reader's language (issue 18), in Chromium against a real Daphne.

End to end: the session's one stream goes to the fake Gladia (``tests/fakes/gladia.py``), which
answers each final with one ``translation`` message per target language; three participants
reading English, Russian and the original see their captions live, a late joiner gets them in
the history, and a language chosen mid-run starts from then on, which the sidebar says.

Scripted: the sidebar (``static/js/transcript.js``) against a fake transcript socket, for the
exact protocol messages (``docs/transcript-protocol.md``): the menu, what it sends, stored and
live translations, stale ones, "Show original", and the menu when nobody can translate.

Finished: the page's language switch, a stale translation re-translated by the (fake) LLM,
search in the translation.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.urls import reverse

from identity.models import User
from sessions_app.models import VideoSession
from spaces.models import SpaceMember
from tests.factories import UserFactory
from tests.fakes.gladia import FakeGladia
from tests.fakes.llm import FakeLlm
from tests.transcription.transcripts import store_transcript
from transcription.models import SegmentTranslation, TranscriptSegment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

T = TypeVar("T")
GLADIA_KEY = "gladia-captions-key"
WAIT_MS = 20_000
SPOKEN = [
    "Guten Morgen zusammen",
    "Wir beginnen mit dem Budget",
    "Die Zahlen sehen gut aus",
    "Fragen bitte am Ende",
]
ENGLISH = {
    (SPOKEN[0], "en"): "Good morning everyone",
    (SPOKEN[1], "en"): "We start with the budget",
    (SPOKEN[2], "en"): "The numbers look good",
    (SPOKEN[3], "en"): "Questions at the end please",
}
NARROW, WIDE = (390, 844), (1366, 900)

LINES_JS = """() => Array.from(document.querySelectorAll("#transcript-lines [data-utterance-id]"))
  .map((li) => {
    const caption = li.querySelector(".caption");
    const text = li.querySelector(".text");
    return {
      id: li.dataset.utteranceId,
      start: Number(li.dataset.start),
      text: text.textContent,
      textShown: text.offsetParent !== null,
      caption: caption && caption.textContent,
      lang: caption && caption.lang,
      title: caption && caption.title,
      stale: Boolean(caption && caption.classList.contains("stale")),
    };
  })"""
OVERFLOW_JS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


class LoopThread:
    """An event loop in a thread for the fake Gladia, whatever the test's thread is doing."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def fake_gladia(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGladia]:
    loop = LoopThread()
    fake = FakeGladia(
        api_key=GLADIA_KEY, script=SPOKEN, utterance_seconds=1.5, translations=ENGLISH
    )
    loop.run(fake.start())
    # Read by the daphne_server fixture (requested after this one) from the environment.
    monkeypatch.setenv("GLADIA_API_URL", fake.api_url)
    try:
        yield fake
    finally:
        loop.run(fake.stop())
        loop.close()


def _reader(space, name: str, email: str) -> User:
    user = UserFactory(email=email, display_name=name)
    SpaceMember.objects.create(space=space, user=user, role=SpaceMember.Role.MEMBER)
    return user


def _open(context, url: str, console_log, label: str, status: str = "NONE"):
    page = context.new_page()
    console_log(page, label)
    page.goto(url)
    page.wait_for_selector(f"#transcript-status[data-status={status}]", timeout=WAIT_MS)
    page.wait_for_selector("#caption-language:not([disabled])", timeout=WAIT_MS)
    return page


def _wait_for_saved(user: User, language: str) -> None:
    deadline = time.monotonic() + 10
    while User.objects.get(pk=user.pk).caption_language != language:
        assert time.monotonic() < deadline, f"{user} never chose {language!r}"
        time.sleep(0.1)


def _wait_for_captions(page, count: int, *, language: str) -> list[dict[str, Any]]:
    """At least ``count`` finals, every one of them captioned in ``language`` ("" = none)."""
    page.wait_for_function(
        """([count, language]) => {
          const lines = document.querySelectorAll("#transcript-lines [data-utterance-id]");
          if (lines.length < count) return false;
          return Array.from(lines).every((li) => {
            const caption = li.querySelector(".caption");
            return language ? caption && caption.lang === language : !caption;
          });
        }""",
        arg=[count, language],
        timeout=WAIT_MS * 2,
    )
    return page.evaluate(LINES_JS)


def _shoot(page, directory: Path, name: str) -> None:
    for width, height in (WIDE, NARROW):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(150)
        assert page.evaluate(OVERFLOW_JS) <= 0, f"{name} scrolls sideways at {width} px"
        page.screenshot(path=str(directory / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": WIDE[0], "height": WIDE[1]})


@pytest.mark.daphne_env(STT_PROVIDER="gladia", GLADIA_API_KEY=GLADIA_KEY)
def test_three_readers_see_their_own_captions_live_and_a_late_joiner_in_history(
    fake_gladia,
    daphne_server,
    launch_chromium,
    login_context,
    console_log,
    speech_wav,
    owner,
    member,
    space,
    artifacts_dir,
):
    shots = artifacts_dir / "captions"
    shots.mkdir(exist_ok=True)
    session = VideoSession.objects.create(
        space=space, created_by=owner, title="Budget, in three languages", languages=["de"]
    )
    erin = _reader(space, "Erin English", "erin@example.com")
    url = daphne_server.url + reverse("sessions:detail", args=[session.slug])
    # One Chromium, a context per person: only the owner's microphone is switched on.
    browser = launch_chromium(speech_wav)
    original = _open(login_context(browser, owner), url, console_log, "original")
    russian = _open(login_context(browser, member), url, console_log, "russian")
    english = _open(login_context(browser, erin), url, console_log, "english")

    options = original.eval_on_selector_all(
        "#caption-language option", "os => os.map(o => o.value)"
    )
    assert options[0] == "" and {"en", "ru", "de"} <= set(options)
    russian.select_option("#caption-language", "ru")
    english.select_option("#caption-language", "en")
    _wait_for_saved(member, "ru")
    _wait_for_saved(erin, "en")

    original.click("#btn-transcription-start")
    for page in (original, russian, english):
        page.wait_for_selector("#transcript-status[data-status=ACTIVE]", timeout=WAIT_MS)
    original.click("#btn-mic")
    original.wait_for_selector("#btn-mic[aria-pressed=true]", timeout=WAIT_MS)

    # Live: each reader sees every final in their own language (the original on hover).
    as_spoken = _wait_for_captions(original, 3, language="")
    in_russian = _wait_for_captions(russian, 3, language="ru")
    in_english = _wait_for_captions(english, 3, language="en")
    assert {line["text"] for line in as_spoken} <= set(SPOKEN)
    assert all(line["textShown"] for line in as_spoken)
    for line in in_russian:
        assert line["caption"] == f"[ru] {line['text']}"
        assert line["title"] == f"Original: {line['text']}"
        assert not line["textShown"] and not line["stale"]
    for line in in_english:
        assert line["caption"] == ENGLISH[(line["text"], "en")]
        assert line["title"] == f"Original: {line['text']}"
    # No "captions start at" note: both languages were chosen before the run began.
    assert russian.is_hidden("#captions-note") and english.is_hidden("#captions-note")
    # The sidebar's downloads come in the reader's language.
    assert russian.get_attribute(".transcript-downloads a[href*='.srt']", "href").endswith(
        ".srt?lang=ru"
    )

    # "Show original" puts the words as spoken under each caption, for the whole sidebar.
    russian.check("#captions-show-original")
    assert all(line["textShown"] for line in russian.evaluate(LINES_JS))

    # A late joiner: the Russian reader opens the session again and gets the history with
    # its Russian captions (lines finalised before this page existed: not sent live to it).
    seen = {line["id"]: line for line in in_russian}
    late = _open(login_context(browser, member), url, console_log, "late-joiner", "ACTIVE")
    assert late.input_value("#caption-language") == "ru"
    history = {line["id"]: line for line in _wait_for_captions(late, len(seen), language="ru")}
    for uid, line in seen.items():
        assert history[uid]["caption"] == line["caption"]

    # The original reader switches to French mid-run: it starts now, earlier lines stay as
    # spoken, and the note says so.
    original.select_option("#caption-language", "fr")
    before = {line["id"] for line in original.evaluate(LINES_JS)}
    original.wait_for_selector("#captions-note:not([hidden])", timeout=WAIT_MS * 2)
    note = original.text_content("#captions-note")
    assert re.fullmatch(r"French captions start at \d\d:\d\d; earlier lines stay as spoken\.", note)
    original.wait_for_function(
        """(before) => Array.from(document.querySelectorAll("#transcript-lines li.line")).some(
             (li) => !before.includes(li.dataset.utteranceId)
               && li.querySelector(".caption[lang=fr]"))""",
        arg=sorted(before),
        timeout=WAIT_MS * 2,
    )
    french = [line for line in original.evaluate(LINES_JS) if line["lang"] == "fr"]
    assert all(line["caption"] == f"[fr] {line['text']}" for line in french)

    for page, name in (
        (original, "original-then-french"),
        (russian, "russian"),
        (english, "english"),
    ):
        _shoot(page, shots, name)
    _shoot(late, shots, "late-joiner-russian")

    original.click("#btn-transcription-stop")
    original.wait_for_selector("#transcript-status[data-status=STOPPED]", timeout=WAIT_MS)
    # The fake really was asked for the union of the readers' languages, then for French too.
    targets = [session.targets for session in fake_gladia.session_list]
    assert sorted(targets[0]) == ["en", "ru"], targets
    assert sorted(targets[-1]) == ["en", "fr", "ru"], targets


# --- the sidebar against a scripted transcript socket ------------------------------------------


def _segment(uid: str, start: float, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "utterance_id": uid,
        "text": text,
        "is_final": True,
        "speaker_identity": "ann",
        "speaker_name": "Ann",
        "start": start,
        "end": start + 2.0,
        "language": "en",
        "revision": 0,
        **extra,
    }


CHOICES = [["de", "German"], ["en", "English"], ["ru", "Russian"]]


class ScriptedSocket:
    """Answers the page's transcript socket with ``connected``, ``history`` and a status."""

    def __init__(self, page, *, captions: dict[str, Any], history: list[dict[str, Any]]) -> None:
        self.captions = captions
        self.history = history
        self.sockets: list[Any] = []
        self.received: list[dict[str, Any]] = []
        page.route_web_socket(re.compile(r"/ws/sessions/[^/]+/transcript/$"), self._accept)

    def _accept(self, ws) -> None:
        self.sockets.append(ws)
        ws.on_message(lambda m: self.received.append(json.loads(m)) if isinstance(m, str) else None)
        self.send(
            {
                "type": "connected",
                "session": "s",
                "identity": "u",
                "name": "U",
                "captions": self.captions,
            }
        )
        self.send({"type": "history", "segments": self.history})
        self.send(
            {
                "type": "transcription_status",
                "status": "ACTIVE",
                "mode": "BROWSER",
                "run_id": 1,
                "provider": "gladia",
                "error": None,
                "error_code": None,
                "captions": None,
            }
        )

    def send(self, message: dict[str, Any]) -> None:
        self.sockets[-1].send(json.dumps(message))

    def sent(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == kind]


@pytest.fixture
def scripted(
    daphne_server, launch_chromium, login_context, console_log, silence_wav, owner, video_session
) -> Callable[..., tuple[Any, ScriptedSocket]]:
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    browser = launch_chromium(silence_wav)

    def open_page(*, captions: dict[str, Any], history: list[dict[str, Any]]):
        page = login_context(browser, owner).new_page()
        console_log(page, "page")
        socket = ScriptedSocket(page, captions=captions, history=history)
        page.goto(url)
        page.wait_for_selector("#transcript-status[data-status=ACTIVE]", timeout=WAIT_MS)
        return page, socket

    return open_page


def _wait(page, predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        page.wait_for_timeout(50)


def _line(page, uid: str) -> dict[str, Any]:
    return next(line for line in page.evaluate(LINES_JS) if line["id"] == uid)


def test_the_menu_chooses_by_keyboard_fills_in_translations_and_says_when_captions_start(
    scripted, artifacts_dir
):
    history = [
        _segment("u1", 5.0, "Hello there."),
        _segment(
            "u2", 70.0, "Let's begin.", translation={"language": "ru", "text": "x", "stale": False}
        ),
    ]
    page, socket = scripted(
        captions={"language": "", "via": "gladia", "choices": CHOICES}, history=history
    )

    labels = page.eval_on_selector_all(
        "#caption-language option", "os => os.map(o => o.textContent)"
    )
    assert labels == ["Original", "German", "English", "Russian"]
    assert page.input_value("#caption-language") == ""
    assert page.is_hidden("#captions-help") and page.is_hidden(".captions-original")
    # A translation in another language than the socket's is not shown.
    assert _line(page, "u2")["caption"] is None

    # By keyboard: focus the menu (Tab order reaches it), type the start of a name.
    page.focus("#caption-language")
    page.keyboard.type("Ru")
    _wait(page, lambda: socket.sent("caption_language") != [])
    assert socket.sent("caption_language") == [{"type": "caption_language", "language": "ru"}]

    socket.send(
        {
            "type": "caption_language",
            "language": "ru",
            "translations": [{"utterance_id": "u2", "text": "Давайте начнём.", "stale": False}],
        }
    )
    page.wait_for_selector("[data-utterance-id=u2] .caption[lang=ru]")
    assert _line(page, "u2")["caption"] == "Давайте начнём."
    assert _line(page, "u2")["title"] == "Original: Let's begin."
    assert _line(page, "u1")["caption"] is None and _line(page, "u1")["textShown"]
    assert page.is_visible(".captions-original")

    # Russian started at 1:00: u1 (0:05) stays as spoken, and the sidebar says so.
    socket.send({"type": "captions", "languages": ["ru"], "since": {"ru": 60.0}, "via": "gladia"})
    page.wait_for_selector("#captions-note:not([hidden])")
    assert page.text_content("#captions-note") == (
        "Russian captions start at 01:00; earlier lines stay as spoken."
    )

    # Live: a final, then its translation (only the reader's language is applied).
    socket.send({"type": "transcript", **_segment("u3", 80.0, "Numbers next.")})
    socket.send(
        {
            "type": "translation",
            "utterance_id": "u3",
            "language": "de",
            "text": "Zahlen.",
            "start": 80.0,
            "end": 82.0,
        }
    )
    socket.send(
        {
            "type": "translation",
            "utterance_id": "u3",
            "language": "ru",
            "text": "Дальше цифры.",
            "start": 80.0,
            "end": 82.0,
        }
    )
    page.wait_for_selector("[data-utterance-id=u3] .caption")
    assert _line(page, "u3")["caption"] == "Дальше цифры."

    # Someone corrects the original: its translation is marked stale.
    socket.send({"type": "segment_updated", **_segment("u2", 70.0, "Let us begin.", revision=1)})
    page.wait_for_selector("[data-utterance-id=u2] .caption.stale")
    assert "The original was corrected after this translation." in _line(page, "u2")["title"]
    assert "Original: Let us begin." in _line(page, "u2")["title"]

    page.check("#captions-show-original")
    assert _line(page, "u2")["textShown"]
    shots = artifacts_dir / "captions"
    shots.mkdir(exist_ok=True)
    _shoot(page, shots, "sidebar-scripted")

    # Back to the original: no captions, no note.
    page.select_option("#caption-language", "")
    _wait(page, lambda: len(socket.sent("caption_language")) == 2)
    assert socket.sent("caption_language")[-1]["language"] == ""
    socket.send({"type": "caption_language", "language": "", "translations": []})
    page.wait_for_selector("#captions-note", state="hidden")
    assert all(line["caption"] is None for line in page.evaluate(LINES_JS))
    assert page.get_attribute(".transcript-downloads a[href*='.txt']", "href").endswith(".txt")


def test_the_saved_choice_is_preselected_and_history_comes_translated(scripted):
    history = [
        _segment(
            "u1", 1.0, "Hello.", translation={"language": "ru", "text": "Привет.", "stale": True}
        ),
        _segment("u2", 3.0, "Bye.", translation=None),
    ]
    page, _ = scripted(
        captions={"language": "ru", "via": "llm", "choices": CHOICES}, history=history
    )

    assert page.input_value("#caption-language") == "ru"
    line = _line(page, "u1")
    assert (line["caption"], line["lang"], line["stale"]) == ("Привет.", "ru", True)
    assert _line(page, "u2")["caption"] is None


def test_when_nobody_can_translate_the_menu_says_why(scripted, artifacts_dir):
    page, socket = scripted(captions={"language": "", "via": "", "choices": CHOICES}, history=[])

    assert page.is_disabled("#caption-language")
    assert page.text_content("#captions-help") == (
        "Translation needs Gladia or an LLM configured on this server."
    )
    assert page.get_attribute("#caption-language", "aria-describedby") == "captions-help"
    assert socket.sent("caption_language") == []
    shots = artifacts_dir / "captions"
    shots.mkdir(exist_ok=True)
    _shoot(page, shots, "sidebar-no-translation")


# --- the finished page in a language ------------------------------------------------------------


def _russian_llm(body: dict[str, Any]) -> str:
    captions = json.loads(body["messages"][-1]["content"])
    return json.dumps({"translations": [f"(ru) {text}" for text in captions]})


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLlm]:
    with FakeLlm(api_key="sk-captions", reply=_russian_llm) as fake:
        # Read by the daphne_server fixture (requested after this one) from the environment.
        monkeypatch.setenv("LLM_BASE_URL", fake.base_url)
        yield fake


@pytest.mark.daphne_env(LLM_API_KEY="sk-captions", LLM_MODEL="fake-model")
def test_finished_page_switches_language_and_retranslates_stale_lines(
    fake_llm,
    daphne_server,
    launch_chromium,
    login_context,
    console_log,
    silence_wav,
    owner,
    member,
    video_session,
    artifacts_dir,
):
    segments = store_transcript(
        video_session,
        [
            (0.0, 2.0, "id-olivia", "Olivia Owner", "Welcome to the budget review."),
            (2.0, 4.0, "id-olivia", "Olivia Owner", "Let's look at the numbers."),
            (5.0, 7.0, "id-max", "Max Member", "They look good this quarter."),
        ],
    )
    SegmentTranslation.objects.bulk_create(
        SegmentTranslation(
            session=video_session, segment=segment, language="ru", text=text, source="gladia"
        )
        for segment, text in zip(
            segments,
            ["Добро пожаловать на обзор бюджета.", "Посмотрим на цифры.", "Они хороши."],
            strict=True,
        )
    )
    TranscriptSegment.objects.filter(pk=segments[1].pk).update(
        text="Let's look at the final numbers.", revision=1
    )
    video_session.status = VideoSession.Status.ENDED
    video_session.save()
    shots = artifacts_dir / "captions"
    shots.mkdir(exist_ok=True)
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    page = login_context(launch_chromium(silence_wav), member).new_page()
    console_log(page, "finished")
    page.goto(url)

    page.click(".transcript-language-switch a:has-text('Russian')")
    page.wait_for_selector(".seg-tr[lang=ru]")
    assert page.url.endswith("lang=ru")
    assert page.get_attribute(".seg-tr[data-uid=u0]", "title") == (
        "Original: Welcome to the budget review."
    )
    assert page.locator(".tr-stale").count() == 1
    _shoot(page, shots, "finished-russian-stale")

    page.click("#btn-retranslate")
    page.wait_for_selector(".messages .message.success")
    assert "1 line was translated into Russian." in page.text_content(".messages")
    assert page.locator(".tr-stale").count() == 0
    assert page.text_content(".seg-tr[data-uid=u1]") == "(ru) Let's look at the final numbers."
    assert len(fake_llm.requests) == 1
    _shoot(page, shots, "finished-russian-retranslated")

    # The page's search finds words of the translation.
    page.fill("#transcript-q", "цифры")
    page.press("#transcript-q", "Enter")
    page.wait_for_selector("#search-count")
    assert page.text_content("#search-count") == "0"
    page.fill("#transcript-q", "бюджета")
    page.press("#transcript-q", "Enter")
    page.wait_for_selector(".search-hits .hit-text[lang=ru] mark")
    assert page.text_content("#search-count") == "1"
