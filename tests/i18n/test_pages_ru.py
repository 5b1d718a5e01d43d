"""Every main page, rendered in Russian, shows no English text of ours: none of the English
messages of the catalogue appears in what a person sees (text, titles, labels, placeholders).
The data is Russian, so any English left on the page is an interface string that escaped
translation."""

from __future__ import annotations

import functools
import re
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.test import Client
from django.utils import timezone

from sessions_app.models import VideoSession
from spaces.models import SpaceMember
from spaces.services import invite_create, space_create
from tests.factories import SpaceMemberFactory, UserFactory, VideoSessionFactory
from tests.transcription.transcripts import end_with_transcript

pytestmark = pytest.mark.django_db

CATALOGUES = Path(__file__).resolve().parents[2] / "locale" / "ru" / "LC_MESSAGES"
VISIBLE_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt", "value", "data-confirm"}


class VisibleText(HTMLParser):
    """What a reader sees or hears: text outside <script>/<style>, plus the attributes that
    browsers and screen readers show (buttons' values only for submit inputs)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "template"):
            self._hidden += 1
        values = dict(attrs)
        if tag == "img" and "/admin/img/" in (values.get("src") or ""):
            return  # Django's admin writes its own icons' alt text in English ("Search")
        for name, value in attrs:
            if name not in VISIBLE_ATTRIBUTES or not value:
                continue
            if name == "value" and not (
                tag == "input" and values.get("type") in ("submit", "button")
            ):
                continue
            self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


@functools.cache
def english_fragments(domains: tuple[str, ...] = ("django",)) -> list[str]:
    """The literal English pieces of our messages that would give away an untranslated
    string: each message split at its placeholders and markup, kept where the piece has a
    word of four letters or more (shorter ones, like "or", also occur inside Russian data)
    and the Russian of the same message does not keep it as it is."""
    fragments = set()
    entries = [e for d in domains for e in polib.pofile(str(CATALOGUES / f"{d}.po"))]
    for entry in entries:
        russian = " ".join([entry.msgstr, *entry.msgstr_plural.values()])
        for text in filter(None, (entry.msgid, entry.msgid_plural)):
            for piece in re.split(r"%\(\w+\)[sdf]|%[sdf]|<[^>]*>|\{\{.*?\}\}|[“”«»\"()]", text):
                piece = piece.strip(" .,:;!?—–-·/")
                # A name the Russian keeps as it is ("LiveKit egress") is not a leftover.
                if re.search(r"[A-Za-z]{4,}", piece) and piece not in russian:
                    fragments.add(piece)
    return sorted(fragments, key=len, reverse=True)


def english_left(html: str, domains: tuple[str, ...] = ("django",)) -> list[str]:
    """The English fragments of the ``domains`` catalogues that ``html`` shows."""
    text = visible_text(html)
    return [
        fragment
        for fragment in english_fragments(domains)
        if re.search(rf"(?<![\w@./-]){re.escape(fragment)}(?![\w@/-])", text)
    ]


@pytest.fixture
def world():
    owner = UserFactory(
        email="vera@example.com", display_name="Вера Петрова", is_staff=True, is_superuser=True
    )
    guest = UserFactory(email="ivan@example.com", display_name="Иван Смирнов")
    stranger = UserFactory(email="olga@example.com", display_name="Ольга Соколова")
    space = space_create(owner=owner, name="Планёрка отдела")
    SpaceMemberFactory(space=space, user=guest, role=SpaceMember.Role.MEMBER)
    invite = invite_create(space=space, by=owner)
    live = VideoSessionFactory(space=space, created_by=owner, title="Утренний созвон")
    live.status = VideoSession.Status.LIVE
    live.started_at = timezone.now()
    live.save()
    finished = VideoSessionFactory(space=space, created_by=owner, title="Итоги квартала")
    end_with_transcript(
        finished,
        [owner, guest],
        [
            (0.0, 3.0, owner.identity, owner.name, "Добрый день, начнём с бюджета."),
            (3.5, 7.0, guest.identity, guest.name, "Мария подготовит отчёт к понедельнику."),
        ],
    )
    return {
        "owner": owner,
        "guest": guest,
        "stranger": stranger,
        "space": space,
        "invite": invite,
        "live": live,
        "finished": finished,
    }


def russian(user=None) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    if user is not None:
        client.force_login(user)
    return client


def assert_russian(client: Client, url: str) -> None:
    response = client.get(url, follow=True)
    assert response.status_code == 200, url
    html = response.content.decode()
    assert '<html lang="ru"' in html, url
    assert english_left(html) == [], url


@pytest.mark.parametrize(
    "url", ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]
)
def test_signed_out_pages_are_russian(url):
    assert_russian(russian(), url)


MEMBER_PAGES = [
    "/spaces/",
    "/spaces/{space}/",
    "/me/usage/",
    "/me/profile/",
    "/sessions/{live}/",
    "/sessions/{finished}/",
]
PAGES = [("owner", page) for page in [*MEMBER_PAGES, "/spaces/{space}/usage/"]] + [
    ("guest", page) for page in MEMBER_PAGES
]


@pytest.mark.parametrize(("who", "page"), PAGES)
def test_signed_in_pages_are_russian(world, who, page):
    url = page.format(
        space=world["space"].slug, live=world["live"].slug, finished=world["finished"].slug
    )
    assert_russian(russian(world[who]), url)


def test_the_invite_page_is_russian(world):
    assert_russian(russian(world["stranger"]), f"/invite/{world['invite'].token}/")


def test_an_invite_opened_signed_out_is_russian(world):
    assert_russian(russian(), f"/invite/{world['invite'].token}/")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/sessions_app/videosession/",
        "/admin/spaces/space/",
        "/admin/transcription/transcriptsegment/",
        "/admin/transcription/transcriptionrun/",
    ],
)
def test_admin_pages_are_russian(world, url):
    assert_russian(russian(world["owner"]), url)


def test_the_check_finds_english_left_on_a_page():
    """The check itself can fail: a page with an English message of ours is caught."""
    assert english_left("<p>Ваши пространства</p><button title='Sign out'>x</button>")
    assert english_left("<html><body><h1>Ваши пространства</h1></body></html>") == []
