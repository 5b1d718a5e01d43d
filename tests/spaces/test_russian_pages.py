"""The pages of spaces, invitations and profiles, and their admin, in Russian: no English text
of ours left (``tests.i18n.test_pages_ru``'s check), Russian plurals and dates, and the way
into a space through an invitation kept when a signed-out visitor switches language."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from spaces.models import Space, SpaceInvite, SpaceMember, TranscriptionSwitch
from spaces.services import invite_create, space_create
from tests.factories import SpaceMemberFactory, UserFactory
from tests.i18n.test_pages_ru import english_left

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings):
    settings.STT_PROVIDER = "gladia"
    owner = UserFactory(
        email="vera@example.com", display_name="Вера Петрова", is_staff=True, is_superuser=True
    )
    guest = UserFactory(email="ivan@example.com", display_name="Иван Смирнов")
    stranger = UserFactory(email="olga@example.com", display_name="Ольга Соколова")
    space = space_create(owner=owner, name="Планёрка отдела")
    # A Cyrillic name makes a "space-…" slug; an English word in the data would read as ours.
    Space.objects.filter(pk=space.pk).update(slug="planerka")
    space.refresh_from_db()
    SpaceMemberFactory(space=space, user=guest, role=SpaceMember.Role.MEMBER)
    invite = invite_create(space=space, by=owner)
    SpaceInvite.objects.filter(pk=invite.pk).update(uses=5)
    TranscriptionSwitch.objects.create()
    return {"owner": owner, "guest": guest, "stranger": stranger, "space": space, "invite": invite}


def russian(user=None) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    if user is not None:
        client.force_login(user)
    return client


def page(client: Client, url: str, status: int = 200) -> str:
    response = client.get(url, follow=True)
    assert response.status_code == status, url
    html = response.content.decode()
    assert 'lang="ru"' in html, url
    assert english_left(html) == [], url
    return html


def admin_page(client: Client, url: str) -> None:
    """An admin page's own content (the navigation lists every app, ours and others'),
    less the search bar's icon text, which Django's admin writes in English."""
    response = client.get(url)
    assert response.status_code == 200, url
    html = response.content.decode().split('<div id="content"', 1)[1]
    html = html.replace('alt="Search"', "")
    assert english_left(html) == [], url


def test_the_space_page_of_an_owner(world):
    html = page(russian(world["owner"]), f"/spaces/{world['space'].slug}/")

    assert "использована 5 раз" in html
    assert "Удалить это пространство" in html
    assert "Языки расшифровки" in html


def test_the_space_list_names_the_role_in_russian(world):
    html = page(russian(world["guest"]), "/spaces/")

    assert '<span class="badge">участник</span>' in html


def test_a_dead_invitation_is_explained_in_russian(world):
    SpaceInvite.objects.filter(pk=world["invite"].pk).update(revoked=True)

    html = page(russian(world["stranger"]), f"/invite/{world['invite'].token}/", status=410)

    assert "Это приглашение больше не действует" in html


def test_joining_through_an_invitation_in_russian(world):
    client = russian(world["stranger"])
    url = f"/invite/{world['invite'].token}/"
    assert "Присоединиться к «Планёрка отдела»" in page(client, url)

    html = client.post(url, follow=True).content.decode()

    assert "Вы присоединились к «Планёрка отдела»." in html


@pytest.mark.parametrize("name", ["account_login", "account_signup"])
def test_a_signed_out_visitor_sees_the_invitation_in_russian(world, name):
    url = f"{reverse(name)}?next=/invite/{world['invite'].token}/"

    html = page(russian(), url)

    assert "чтобы присоединиться к «Планёрка отдела»" in html


def test_switching_language_keeps_the_way_to_the_invitation(world):
    client = Client()
    login = f"{reverse('account_login')}?next=/invite/{world['invite'].token}/"
    english = client.get(login).content.decode()
    switch = english.split('class="inline language-switch"', 1)[1].split("</form>", 1)[0]
    here = f"{reverse('account_login')}?next=%2Finvite%2F{world['invite'].token}%2F"
    assert f'name="next" value="{here}"' in switch

    response = client.post(reverse("language-set"), {"language": "ru", "next": here})

    assert response.url == here
    html = client.get(here).content.decode()
    assert english_left(html) == []
    assert "чтобы присоединиться к «Планёрка отдела»" in html


@pytest.mark.parametrize(
    "url",
    [
        "/admin/identity/user/",
        "/admin/identity/user/{owner}/change/",
        "/admin/spaces/space/",
        "/admin/spaces/space/{space}/change/",
        "/admin/spaces/spacemember/",
        "/admin/spaces/spaceinvite/",
        "/admin/spaces/spaceinvite/{invite}/change/",
        "/admin/spaces/transcriptionswitch/1/change/",
    ],
)
def test_the_admin_of_people_and_spaces(world, url):
    url = url.format(owner=world["owner"].pk, space=world["space"].pk, invite=world["invite"].pk)
    admin_page(russian(world["owner"]), url)
