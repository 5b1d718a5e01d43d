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
# What people write, in English and in Russian (a Russian page is checked for English left).
TEXTS = {
    "en": {
        "owner": "Olivia Owner",
        "member": "Max Member",
        "newcomer": "Nina Newcomer",
        "space": "Design reviews and other long-named meetings",
        "live": "Quarterly planning with the whole product and engineering group, part two",
        "finished": "Retro: what went well, what did not",
        "lines": [
            "Welcome everybody, let us look at what went well this quarter.",
            "The release went out on time; the on-call rotation was quieter than ever.",
            "Action item: Olivia sends the updated roadmap to the whole group by Friday.",
        ],
        "summary": "The quarter went well; the roadmap goes out on Friday.",
        "topics": ["release", "on-call rotation", "roadmap"],
        "item": "Send the roadmap",
        "due": "Friday",
        "task": "Send the updated roadmap",
        "proposal": "Check the on-call rotation for the holidays",
    },
    "ru": {
        "owner": "Ольга Владимирова",
        "member": "Максим Петров",
        "newcomer": "Нина Новикова",
        "space": "Обзоры дизайна и другие встречи с очень длинными названиями",
        "live": "Квартальное планирование всей продуктовой и инженерной команды, часть вторая",
        "finished": "Ретро: что получилось, а что нет",
        "lines": [
            "Всем добрый день, давайте посмотрим, что получилось в этом квартале.",
            "Релиз вышел вовремя; дежурства прошли спокойнее, чем когда-либо.",
            "Задача: Ольга разошлёт обновлённый план всей группе до пятницы.",
        ],
        "summary": "Квартал прошёл хорошо; план разошлют в пятницу.",
        "topics": ["релиз", "дежурства", "план"],
        "item": "Разослать план",
        "due": "пятница",
        "task": "Разослать обновлённый план",
        "proposal": "Проверить график дежурств на праздники",
    },
}


@dataclass
class Site:
    owner: object
    newcomer: object
    space_slug: str
    live: VideoSession
    finished: VideoSession
    invite: SpaceInvite


def build_site(owner, member, language: str = "en") -> Site:
    """A space with a live session, a finished one (transcript, usage, analysis, tasks), an
    invitation, and enough text to wrap; what people wrote is in ``language``."""
    from spaces.services import space_create

    text = TEXTS[language]
    owner.is_staff = owner.is_superuser = True
    owner.display_name = text["owner"]
    owner.save()
    member.display_name = text["member"]
    member.save()
    space = space_create(owner=owner, name=text["space"])
    SpaceMemberFactory(space=space, user=member)
    live = VideoSession.objects.create(space=space, created_by=owner, title=text["live"])
    finished = VideoSession.objects.create(space=space, created_by=owner, title=text["finished"])
    start = timezone.now() - timedelta(hours=2)
    VideoSession.objects.filter(pk=finished.pk).update(status="LIVE", started_at=start)
    participant = make_participant(
        session=finished, identity=owner.identity, joined_at=start, user=owner
    )
    participant.name = owner.name
    participant.save(update_fields=["name"])
    usage = make_usage(session=finished, user=owner, seconds=93, created_at=start)
    for n, line in enumerate(text["lines"]):
        TranscriptSegment.objects.create(
            session=finished,
            run=usage.run,
            speaker_identity=owner.identity,
            speaker_name=owner.name,
            utterance_id=f"u{n}",
            text=line,
            language=language,
            start_offset=n * 20.0,
            end_offset=n * 20.0 + 15.0,
        )
    finished.refresh_from_db()
    session_end(session=finished, by=owner)
    SessionAnalysis.objects.filter(session=finished).update(
        status="DONE",
        provider="offline",
        summary=text["summary"],
        topics=text["topics"],
        action_items=[{"text": text["item"], "owner": owner.name, "due": text["due"]}],
        speaker_stats=[
            {"identity": owner.identity, "name": owner.name, "talk_seconds": 45, "words": 40,
             "wpm": 53, "turns": 3}
        ],
    )  # fmt: skip
    Task.objects.create(space=space, session=finished, title=text["task"])
    Task.objects.create(
        space=space,
        session=finished,
        status=Task.Status.PROPOSED,
        title=text["proposal"],
        proposed_title=text["proposal"],
    )
    invite = SpaceInviteFactory(space=space, created_by=owner)
    return Site(
        owner=owner,
        newcomer=UserFactory(email="newcomer@example.com", display_name=text["newcomer"]),
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
        ("search", "owner", reverse("search") + "?q=roadmap"),
        ("space-search", "owner", reverse("space-search", args=[space]) + "?q=roadmap"),
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
