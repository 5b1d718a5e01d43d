"""The pages people use, on a site with data on every page, for browser tests that visit them
all: a space with a live session, a finished one (transcript, usage, analysis, tasks), an
invitation, and enough text to wrap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from sessions_app.models import SessionAnalysis, Task, VideoSession
from sessions_app.services import session_end
from spaces.models import SpaceInvite
from tests.factories import SpaceInviteFactory, SpaceMemberFactory, UserFactory
from tests.transcription.usage_factories import make_participant, make_usage
from transcription.models import TranscriptSegment

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


def build_site(owner, member) -> Site:
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


def pages(site: Site) -> list[tuple[str, str, str]]:
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


def cookie_context(browser, login_context, site: Site, who: str, width: int, locale="en-US"):
    """A browser context of ``width`` whose Accept-Language is ``locale``."""
    options = {"viewport": {"width": width, "height": 800}, "locale": locale}
    if who == "nobody":
        return browser.new_context(**options)
    user = site.owner if who == "owner" else site.newcomer
    signed_in = login_context(browser, user)
    cookies = signed_in.cookies()
    signed_in.close()
    context = browser.new_context(**options)
    context.add_cookies(cookies)
    return context


def settle(page, name: str) -> None:
    if name == "api-docs":
        # Swagger UI writes the schema's title once it has loaded its bundle and the schema.
        page.wait_for_selector(".swagger-ui .info .title:has-text('Rooms API')", timeout=WAIT_MS)
    else:
        page.wait_for_load_state("networkidle", timeout=WAIT_MS)
    page.wait_for_timeout(300)
