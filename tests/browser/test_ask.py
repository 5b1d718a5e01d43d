"""Ask the archive in the browser: the question box on the space page and on the finished page
answers in place (the LLM's cited answer from a fake LLM, or the extractive one without an
LLM), and without JavaScript on a page of its own. Real Daphne, headless Chromium."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import VideoSession
from tests.factories import VideoSessionFactory
from tests.fakes.llm import FakeLlm
from tests.sessions_app.analysis_support import store_lines

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000
REVIEW = [
    (0.0, 5.0, "u-ann", "Ann", "Good morning, let us start with the numbers."),
    (6.0, 11.0, "u-bob", "Bob", "The quarterly report shows we spent less than planned."),
    (12.0, 18.0, "u-ann", "Ann", "We decided to raise the marketing budget to fifty thousand."),
    (19.0, 24.0, "u-bob", "Bob", "Then the video campaign can start in March."),
    (25.0, 30.0, "u-cem", "Cem", "I will send the invoices on Friday."),
]
HIRING = [
    (0.0, 5.0, "u-ann", "Ann", "Two engineers start in April."),
    (6.0, 11.0, "u-bob", "Bob", "The hiring budget stays as it is until summer."),
]


def _cite_budget(body) -> str:
    text = body["messages"][-1]["content"]
    answer = []
    for block in re.split(r"\n\n(?=\[\d+\] Meeting )", text):
        match = re.match(r"\[(\d+)\] Meeting ", block)
        if match and "marketing budget" in block:
            answer.append(
                {"text": "The marketing budget was raised to 50,000.", "passages": [int(match[1])]}
            )
        if match and "hiring budget" in block:
            answer.append(
                {
                    "text": "The hiring budget is unchanged until summer.",
                    "passages": [int(match[1])],
                }
            )
    return json.dumps({"found": bool(answer), "answer": answer})


@pytest.fixture
def meetings(space, owner):
    review = VideoSessionFactory(space=space, created_by=owner, title="Budget review")
    hiring = VideoSessionFactory(space=space, created_by=owner, title="Hiring sync")
    store_lines(review, REVIEW)
    store_lines(hiring, HIRING)
    started = timezone.now() - timedelta(hours=1)
    VideoSession.objects.filter(pk__in=[review.pk, hiring.pk]).update(
        status=VideoSession.Status.ENDED, started_at=started, ended_at=started + timedelta(hours=1)
    )
    return {"review": review, "hiring": hiring}


@pytest.fixture
def llm_for_server(request):
    """A fake LLM the server (Daphne) is configured with: its address is only known now, so
    it is added to the test's ``daphne_env`` (kept, if the test has one) before the server
    starts. Request it before ``daphne_server``."""
    with FakeLlm(api_key="sk-browser", reply=_cite_budget) as fake:
        declared = request.node.get_closest_marker("daphne_env")
        env = {**(declared.kwargs if declared else {})}
        env.update(LLM_BASE_URL=fake.base_url, LLM_API_KEY="sk-browser", LLM_MODEL="fake-model")
        request.node.add_marker(pytest.mark.daphne_env(**env), append=False)
        yield fake


def _screenshots(page, directory, name: str) -> None:
    directory.mkdir(exist_ok=True)
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        page.locator("#ask").scroll_into_view_if_needed()
        page.screenshot(path=str(directory / f"{name}-{width}.png"))
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways at {width} px"


def test_member_asks_on_the_space_page_and_reads_an_answer_citing_the_moments(
    llm_for_server, daphne_server, launch_chromium, login_context, console_log, silence_wav,
    artifacts_dir, member, space, meetings,
):  # fmt: skip
    page = login_context(launch_chromium(silence_wav), member).new_page()
    console_log(page, "member")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    url = daphne_server.url + reverse("spaces:detail", args=[space.slug])
    page.goto(url)

    page.fill("#ask-question", "What did we decide about the budget?")
    page.click("#ask button[type=submit]")

    page.wait_for_selector('#ask .ask-answer[data-mode="llm"]', timeout=WAIT_MS)
    assert page.url == url  # answered in place
    claims = page.text_content("#ask .ask-claims")
    assert "The marketing budget was raised to 50,000." in claims
    assert "The hiring budget is unchanged until summer." in claims
    cite = page.locator("#ask .ask-claims a.cite").first
    href = urlsplit(cite.get_attribute("href"))
    assert href.path == reverse("sessions:detail", args=[meetings["review"].slug])
    assert "t=12" in href.query
    assert page.locator("#ask .ask-passage").count() == 2
    assert len(llm_for_server.requests) == 1
    _screenshots(page, artifacts_dir / "ask", "ask-space-llm")

    # The citation takes the reader to the moment on the finished page.
    cite.click()
    page.wait_for_url(re.compile(r"#t-"), timeout=WAIT_MS)
    assert "fifty thousand" in page.text_content(".turns")
    assert errors == []


def test_finished_page_box_answers_from_this_meeting_with_the_best_passages(
    daphne_server, launch_chromium, login_context, console_log, silence_wav, artifacts_dir,
    member, meetings,
):  # fmt: skip
    page = login_context(launch_chromium(silence_wav), member).new_page()
    console_log(page, "member")
    url = daphne_server.url + reverse("sessions:detail", args=[meetings["hiring"].slug])
    page.goto(url)

    page.fill("#ask-question", "budget")
    page.click("#ask button[type=submit]")

    page.wait_for_selector('#ask .ask-answer[data-mode="extractive"]', timeout=WAIT_MS)
    answer = page.text_content("#ask .ask-answer")
    assert "Best matching passages" in answer
    assert "Not a written answer" in answer
    assert "hiring budget" in answer
    assert "marketing budget" not in answer  # this meeting only
    assert page.locator("#ask .ask-lines li.hit mark").count() >= 1
    _screenshots(page, artifacts_dir / "ask", "ask-finished-extractive")

    page.check('#ask input[name=scope][value="space"]')
    page.click("#ask button[type=submit]")
    page.wait_for_selector("#ask .ask-passage:nth-child(2)", timeout=WAIT_MS)
    assert "marketing budget" in page.text_content("#ask .ask-answer")


def test_without_javascript_the_answer_comes_on_a_page_of_its_own(
    daphne_server, launch_chromium, login_context, silence_wav, member, space, meetings
):
    browser = launch_chromium(silence_wav)
    signed_in = login_context(browser, member)
    cookies = signed_in.cookies()
    signed_in.close()
    context = browser.new_context(java_script_enabled=False)
    context.add_cookies(cookies)
    page = context.new_page()
    page.goto(daphne_server.url + reverse("spaces:detail", args=[space.slug]))

    page.fill("#ask-question", "kangaroo migration")
    page.click("#ask button[type=submit]")

    page.wait_for_url(re.compile(r"/ask/$"), timeout=WAIT_MS)
    assert "I could not find this in your meetings." in page.text_content("#ask")
    assert page.input_value("#ask-question") == "kangaroo migration"
