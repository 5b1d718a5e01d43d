"""The live session page's scripts speak the page's language (static/js through Django's
JavaScript catalogue), and the live sidebar tags each line's language once a session has more
than one.

The page comes from a real Daphne; its transcript WebSocket is the scripted fake of
test_transcript_sidebar.py, so statuses and segments arrive exactly when the test says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse

from tests.browser.test_transcript_sidebar import FakeTranscriptSocket, segment, status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 10_000

# What the scripts write, per page language.
TEXTS = {
    "en": {
        "mic_off": "Mic off",
        "mic_on": "Mic on",
        "camera_on": "Camera on",
        "camera_off": "Camera off",
        "live": "Live",
        "not_started": "Not started",
        "transcribing_muted": "Transcribing · your microphone is off",
        "transcribing": "Transcribing",
        "failed": "Transcription failed: unknown error",
        "unsure": "Recognised with 31% confidence",
        "russian": "Russian",
        "english": "English",
    },
    "ru": {
        "mic_off": "Микрофон выкл.",
        "mic_on": "Микрофон вкл.",
        "camera_on": "Камера вкл.",
        "camera_off": "Камера выкл.",
        "live": "В эфире",
        "not_started": "Не начата",
        "transcribing_muted": "Идёт расшифровка · ваш микрофон выключен",
        "transcribing": "Идёт расшифровка",
        "failed": "Сбой расшифровки: неизвестная ошибка",
        "unsure": "Распознано с уверенностью 31\xa0%",  # Russian writes a space before %
        "russian": "Русский",
        "english": "Английский",
    },
}

TAGS_JS = """() => Array.from(document.querySelectorAll("#transcript-lines [data-utterance-id]"),
  (li) => {
    const tag = li.querySelector(".lang-tag");
    return {
      id: li.dataset.utteranceId,
      tag: tag && tag.textContent,
      title: tag && tag.title,
      lang: li.querySelector(".text").lang,
    };
  })"""


def said(uid: str, start: float, text: str, language: str, **extra: Any) -> dict[str, Any]:
    return {**segment(uid, start, text), "language": language, **extra}


@pytest.fixture
def open_page(
    daphne_server, launch_chromium, login_context, console_log, silence_wav, owner, video_session
) -> Callable[..., tuple[Any, FakeTranscriptSocket]]:
    """``open_page(how=..., history=[...], width=...)`` → (page, fake transcript socket).

    ``how`` picks the page language: "en" (nothing said), "cookie" (the switcher's
    ``rooms_language=ru``) or "header" (the browser's ``Accept-Language: ru``).
    """
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    browser = launch_chromium(silence_wav)

    def open_(*, how: str = "en", history=(), width: int = 1280):
        context = login_context(browser, owner)
        context.set_default_timeout(WAIT_MS)
        if how == "cookie":
            cookie = {"name": "rooms_language", "value": "ru", "url": daphne_server.url}
            context.add_cookies([cookie])
        elif how == "header":
            context.set_extra_http_headers({"Accept-Language": "ru-RU,ru;q=0.9"})
        page = context.new_page()
        page.set_viewport_size({"width": width, "height": 800})
        console_log(page, how)
        fake = FakeTranscriptSocket(page, history=list(history), first_status=status("NONE", None))
        page.goto(url)
        page.wait_for_selector("#transcript-status[data-status=NONE]")
        return page, fake

    return open_


@pytest.mark.parametrize(("how", "language"), [("en", "en"), ("cookie", "ru"), ("header", "ru")])
def test_controls_and_sidebar_speak_the_page_language(open_page, how, language):
    texts = TEXTS[language]
    page, fake = open_page(how=how)
    assert page.get_attribute("html", "lang") == language

    page.wait_for_selector(f"#transcript-status:text-is('{texts['not_started']}')")
    page.wait_for_selector(f"#session-status:text-is('{texts['live']}')")
    page.wait_for_selector(f"#btn-cam[aria-pressed=true]:text-is('{texts['camera_on']}')")
    page.wait_for_selector(f"#btn-mic[aria-pressed=false]:text-is('{texts['mic_off']}'):enabled")

    fake.send(status("ACTIVE"))  # a browser-mode run while this person's microphone is off
    page.wait_for_selector(f"#transcript-status:text-is('{texts['transcribing_muted']}')")
    page.click("#btn-mic")
    page.wait_for_selector(f"#btn-mic[aria-pressed=true]:text-is('{texts['mic_on']}')")
    page.wait_for_selector(f"#transcript-status:text-is('{texts['transcribing']}')")
    page.click("#btn-cam")
    page.wait_for_selector(f"#btn-cam[aria-pressed=false]:text-is('{texts['camera_off']}')")

    fake.send(status("FAILED"))
    page.wait_for_selector(f"#transcript-error:text-is('{texts['failed']}')")

    # Percentages as the language writes them.
    fake.send({"type": "transcript", **said("u1", 1.0, "best", "en", confidence=0.31)})
    assert page.get_attribute("[data-utterance-id=u1] .text", "title") == texts["unsure"]


@pytest.mark.parametrize(("how", "language"), [("en", "en"), ("cookie", "ru")])
def test_language_tags_appear_on_every_line_once_a_second_language_is_spoken(
    open_page, how, language
):
    texts = TEXTS[language]
    page, fake = open_page(
        how=how, history=[said("u1", 1.0, "Hello all", "en"), said("u2", 3.0, "Let us start", "en")]
    )
    page.wait_for_selector("[data-utterance-id=u2]")
    # One language so far, partials and all: nothing to tell apart.
    fake.send({"type": "transcript", **said("u3", 5.0, "Добрый", "ru", is_final=False)})
    page.wait_for_selector("#transcript-partials [data-utterance-id=u3]")
    assert page.locator(".lang-tag").count() == 0
    assert [line["lang"] for line in page.evaluate(TAGS_JS)] == ["en", "en"]

    fake.send({"type": "transcript", **said("u3", 5.0, "Добрый день", "ru")})
    page.wait_for_selector("#transcript-lines [data-utterance-id=u3] .lang-tag")
    english, russian = texts["english"], texts["russian"]
    assert page.evaluate(TAGS_JS) == [
        {"id": "u1", "tag": "EN", "title": english, "lang": "en"},
        {"id": "u2", "tag": "EN", "title": english, "lang": "en"},
        {"id": "u3", "tag": "RU", "title": russian, "lang": "ru"},
    ]

    # Lines that come later are tagged too, partials included.
    fake.send({"type": "transcript", **said("u4", 7.0, "And in English", "en", is_final=False)})
    page.wait_for_selector("#transcript-partials [data-utterance-id=u4] .lang-tag:text-is('EN')")


def test_language_tags_fit_a_phone_sidebar(open_page):
    page, _ = open_page(
        how="cookie",
        width=390,
        history=[
            said("u1", 1.0, "Hello everyone, shall we start with the roadmap?", "en",
                 speaker_name="Konstantin Konstantinopolsky"),
            said("u2", 4.0, "Да, давайте начнём с планов на квартал.", "ru"),
        ],
    )  # fmt: skip
    page.wait_for_selector("[data-utterance-id=u2] .lang-tag")
    overflow = page.evaluate(
        """() => {
          const scroller = document.getElementById("transcript-scroll");
          const box = scroller.getBoundingClientRect();
          const tags = Array.from(document.querySelectorAll(".lang-tag"), (t) =>
            t.getBoundingClientRect());
          return {
            scrolls: scroller.scrollWidth > scroller.clientWidth,
            page: document.documentElement.scrollWidth > window.innerWidth,
            outside: tags.filter((t) => t.left < box.left || t.right > box.right).length,
            heights: tags.map((t) => Math.round(t.height)),
          };
        }"""
    )
    assert overflow["scrolls"] is False
    assert overflow["page"] is False
    assert overflow["outside"] == 0
    assert all(0 < h <= 20 for h in overflow["heights"]), overflow
