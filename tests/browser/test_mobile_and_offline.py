"""Every page on a phone, and every page offline.

- At 360 and 390 px wide no page scrolls sideways (``scrollWidth`` of the document is the
  viewport's), the top bar spans the page, and the live session page puts the transcript
  under the video.
- With every request that leaves the server refused, each page (the API docs included) loads
  completely: nothing comes from a CDN or a font service.

Screenshots of each page at 1366 and 390 px go to ``artifacts/pages/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import SessionAnalysis, Task, VideoSession
from sessions_app.services import session_end
from spaces.models import SpaceInvite
from tests.factories import SpaceInviteFactory, SpaceMemberFactory, UserFactory
from tests.transcription.usage_factories import make_participant, make_usage
from transcription.models import TranscriptSegment

pytestmark = pytest.mark.django_db(transaction=True)

NARROW = (360, 390)
WAIT_MS = 20_000
LONG_TITLE = "Quarterly planning with the whole product and engineering group, part two"


@dataclass
class Site:
    owner: object
    newcomer: object
    space_slug: str
    live: VideoSession
    finished: VideoSession
    invite: SpaceInvite


@pytest.fixture
def site(owner, member) -> Site:
    """A space with a live session, a finished one (transcript, usage, analysis, tasks), an
    invitation, and enough text to wrap."""
    from spaces.services import space_create

    owner.is_staff = owner.is_superuser = True
    owner.save()
    space = space_create(owner=owner, name="Design reviews and other long-named meetings")
    SpaceMemberFactory(space=space, user=member)
    live = VideoSession.objects.create(space=space, created_by=owner, title=LONG_TITLE)
    finished = VideoSession.objects.create(
        space=space, created_by=owner, title="Retro: what went well, what did not"
    )
    start = timezone.now() - timedelta(hours=2)
    VideoSession.objects.filter(pk=finished.pk).update(status="LIVE", started_at=start)
    participant = make_participant(
        session=finished, identity=owner.identity, joined_at=start, user=owner
    )
    participant.name = owner.name
    participant.save(update_fields=["name"])
    usage = make_usage(session=finished, user=owner, seconds=93, created_at=start)
    for n, text in enumerate(
        [
            "Welcome everybody, let us look at what went well this quarter.",
            "The release went out on time; the on-call rotation was quieter than ever.",
            "Action item: Olivia sends the updated roadmap to the whole group by Friday.",
        ]
    ):
        TranscriptSegment.objects.create(
            session=finished,
            run=usage.run,
            speaker_identity=owner.identity,
            speaker_name=owner.name,
            utterance_id=f"u{n}",
            text=text,
            language="en",
            start_offset=n * 20.0,
            end_offset=n * 20.0 + 15.0,
        )
    finished.refresh_from_db()
    session_end(session=finished, by=owner)
    SessionAnalysis.objects.filter(session=finished).update(
        status="DONE",
        provider="offline",
        summary="The quarter went well; the roadmap goes out on Friday.",
        topics=["release", "on-call rotation", "roadmap"],
        action_items=[{"text": "Send the roadmap", "owner": owner.name, "due": "Friday"}],
        speaker_stats=[
            {"identity": owner.identity, "name": owner.name, "talk_seconds": 45, "words": 40,
             "wpm": 53, "turns": 3}
        ],
    )  # fmt: skip
    Task.objects.create(space=space, session=finished, title="Send the updated roadmap")
    Task.objects.create(
        space=space,
        session=finished,
        status=Task.Status.PROPOSED,
        title="Check the on-call rotation for the holidays",
        proposed_title="Check the on-call rotation for the holidays",
    )
    invite = SpaceInviteFactory(space=space, created_by=owner)
    return Site(
        owner=owner,
        newcomer=UserFactory(email="newcomer@example.com", display_name="Nina Newcomer"),
        space_slug=space.slug,
        live=live,
        finished=finished,
        invite=invite,
    )


def _pages(site: Site) -> list[tuple[str, str, str]]:
    """(name, who is signed in, path) of every page people use."""
    space = site.space_slug
    invite_path = reverse("invite-accept", args=[site.invite.token])
    return [
        ("sign-in", "nobody", f"{reverse('account_login')}?next={invite_path}"),
        ("sign-up", "nobody", f"{reverse('account_signup')}?next={invite_path}"),
        ("password-reset", "nobody", reverse("account_reset_password")),
        ("spaces", "owner", reverse("spaces:list")),
        ("space", "owner", reverse("spaces:detail", args=[space])),
        ("space-usage", "owner", reverse("space-usage", args=[space])),
        ("my-usage", "owner", reverse("my-usage")),
        ("profile", "owner", reverse("identity:profile")),
        ("session-live", "owner", reverse("sessions:detail", args=[site.live.slug])),
        ("session-finished", "owner", reverse("sessions:detail", args=[site.finished.slug])),
        ("invite", "newcomer", invite_path),
        ("api-docs", "owner", reverse("api-docs")),
    ]


@pytest.fixture
def browser(launch_chromium, silence_wav):
    return launch_chromium(silence_wav)


def _cookie_context(browser, login_context, site: Site, who: str, width: int):
    if who == "nobody":
        return browser.new_context(viewport={"width": width, "height": 800})
    user = site.owner if who == "owner" else site.newcomer
    signed_in = login_context(browser, user)
    cookies = signed_in.cookies()
    signed_in.close()
    context = browser.new_context(viewport={"width": width, "height": 800})
    context.add_cookies(cookies)
    return context


def _settle(page, name: str) -> None:
    if name == "api-docs":
        # Swagger UI writes the schema's title once it has loaded its bundle and the schema.
        page.wait_for_selector(".swagger-ui .info .title:has-text('Rooms API')", timeout=WAIT_MS)
    else:
        page.wait_for_load_state("networkidle", timeout=WAIT_MS)
    page.wait_for_timeout(300)


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


def test_every_page_fits_a_phone_without_sideways_scrolling(
    site, daphne_server, browser, login_context, artifacts_dir
):
    shots = artifacts_dir / "pages"
    shots.mkdir(exist_ok=True)
    problems = []
    for name, who, path in _pages(site):
        for width in NARROW:
            context = _cookie_context(browser, login_context, site, who, width)
            page = context.new_page()
            page.goto(daphne_server.url + path)
            _settle(page, name)
            found = _overflow(page)
            if width == 390:
                page.screenshot(path=str(shots / f"{name}-390.png"), full_page=True)
            if found["scroll"] > found["width"]:
                problems.append(f"{name} at {width}px: {found}")
            if found["bar"] is not None and found["bar"] < found["width"]:
                problems.append(f"{name} at {width}px: the top bar is {found['bar']} px wide")
            context.close()
    assert not problems, "\n".join(problems)


def test_the_live_transcript_goes_under_the_video_on_a_phone(
    site, daphne_server, browser, login_context
):
    context = _cookie_context(browser, login_context, site, "owner", 390)
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
    pages = [
        *_pages(site),
        ("admin", "owner", reverse("admin:index")),
        ("admin-usage", "owner", reverse("admin:transcription_transcriptionusage_changelist")),
        (
            "admin-analysis",
            "owner",
            reverse("admin:sessions_app_sessionanalysis_change", args=[site.finished.analysis.pk]),
        ),
    ]
    for name, who, path in pages:
        context = _cookie_context(browser, login_context, site, who, 1366)
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
        _settle(page, name)
        page.screenshot(path=str(shots / f"{name}-1366.png"), full_page=True)
        assert not leaving, f"{name} asked another host for {leaving}"
        assert not [u for u in failed if urlsplit(u).netloc == ours], (name, failed)
        context.close()


def test_the_api_docs_render_from_our_static_files(site, daphne_server, browser, login_context):
    context = _cookie_context(browser, login_context, site, "owner", 1366)
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(daphne_server.url + reverse("api-docs"))

    page.wait_for_selector(".swagger-ui .info .title:has-text('Rooms API')", timeout=WAIT_MS)
    page.wait_for_selector(".opblock-tag-section", timeout=WAIT_MS)

    assert page.locator(".opblock").count() > 20  # the operations are listed
    assert not errors, errors  # no Content-Security-Policy violation, no script error
