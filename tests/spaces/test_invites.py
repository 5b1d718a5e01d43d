"""Invitation links: owners create them; a signed-in person who opens one becomes a MEMBER."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from spaces.models import SpaceInvite, SpaceMember
from tests.factories import SpaceInviteFactory, UserFactory


@pytest.fixture
def invite(space, owner) -> SpaceInvite:
    return SpaceInviteFactory(space=space, created_by=owner)


@pytest.fixture
def expired_invite(space, owner) -> SpaceInvite:
    return SpaceInviteFactory(
        space=space, created_by=owner, expires_at=timezone.now() - timedelta(minutes=1)
    )


@pytest.fixture
def newcomer(db):
    return UserFactory(email="newcomer@example.com")


@pytest.fixture
def newcomer_client(newcomer) -> Client:
    client = Client()
    client.force_login(newcomer)
    return client


@pytest.fixture
def newcomer_api(newcomer) -> APIClient:
    client = APIClient()
    client.force_authenticate(newcomer)
    return client


def page_url(invite: SpaceInvite) -> str:
    return reverse("invite-accept", kwargs={"token": invite.token})


def api_accept_url(invite: SpaceInvite) -> str:
    return reverse("api-invite-accept", kwargs={"token": invite.token})


# --- Creating invitations ---------------------------------------------------------------------


def test_owner_creates_an_invite_from_the_space_page(owner_client, space):
    response = owner_client.post(reverse("spaces:invite-create", kwargs={"slug": space.slug}))

    invite = space.invites.get()
    assert response.status_code == 302
    assert response.url.endswith(f"?invite={invite.pk}")
    page = owner_client.get(response.url)
    assert page_url(invite) in page.content.decode()


def test_member_cannot_create_an_invite_from_the_space_page(member_client, space):
    response = member_client.post(reverse("spaces:invite-create", kwargs={"slug": space.slug}))

    assert response.status_code == 302
    assert not space.invites.exists()
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Only an owner" in m for m in messages)


def test_invite_create_page_only_accepts_post(owner_client, space):
    response = owner_client.get(reverse("spaces:invite-create", kwargs={"slug": space.slug}))

    assert response.status_code == 405
    assert not space.invites.exists()


def test_owner_creates_an_invite_through_the_api_valid_for_a_week(owner_api, space):
    before = timezone.now()

    response = owner_api.post(reverse("api-invite-create", kwargs={"slug": space.slug}))

    assert response.status_code == 201
    body = response.json()
    invite = space.invites.get()
    assert body["token"] == invite.token
    assert len(invite.token) >= 32
    assert body["url"] == f"http://testserver{page_url(invite)}"
    assert before + timedelta(days=7) <= invite.expires_at <= timezone.now() + timedelta(days=7)


def test_invite_ttl_can_be_chosen_in_hours(owner_api, space):
    response = owner_api.post(
        reverse("api-invite-create", kwargs={"slug": space.slug}), {"ttl_hours": 2}, format="json"
    )

    assert response.status_code == 201
    remaining = space.invites.get().expires_at - timezone.now()
    assert timedelta(hours=2) - timedelta(minutes=1) < remaining <= timedelta(hours=2)


@pytest.mark.parametrize("ttl_hours", [0, -1, 24 * 30 + 1])
def test_invite_ttl_outside_one_hour_to_thirty_days_is_400(owner_api, space, ttl_hours):
    response = owner_api.post(
        reverse("api-invite-create", kwargs={"slug": space.slug}),
        {"ttl_hours": ttl_hours},
        format="json",
    )

    assert response.status_code == 400
    assert not space.invites.exists()


def test_two_invites_have_different_tokens(owner_api, space):
    url = reverse("api-invite-create", kwargs={"slug": space.slug})

    first = owner_api.post(url).json()["token"]
    second = owner_api.post(url).json()["token"]

    assert first != second


def test_member_cannot_create_an_invite_through_the_api(member_api, space):
    response = member_api.post(reverse("api-invite-create", kwargs={"slug": space.slug}))

    assert response.status_code == 403
    assert response.json()["code"] == "owner_required"
    assert not space.invites.exists()


def test_invite_links_are_shown_only_to_owners(member_client, invite, space):
    response = member_client.get(reverse("spaces:detail", kwargs={"slug": space.slug}))

    assert response.status_code == 200
    assert invite.token not in response.content.decode()


# --- Accepting by link ------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_visitor_of_an_invite_link_is_sent_to_sign_in_and_back(client, invite):
    response = client.get(page_url(invite))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert "next=" in response.url
    assert invite.token in response.url


def test_invite_page_names_the_space_and_who_invited(newcomer_client, invite, space):
    response = newcomer_client.get(page_url(invite))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Owner&#x27;s space" in content
    assert "Olivia Owner" in content


def test_new_user_accepting_by_link_becomes_member(newcomer_client, newcomer, invite, space):
    response = newcomer_client.post(page_url(invite))

    assert response.status_code == 302
    assert response.url == reverse("spaces:detail", kwargs={"slug": space.slug})
    assert space.memberships.get(user=newcomer).role == SpaceMember.Role.MEMBER
    assert newcomer_client.get(response.url).status_code == 200
    invite.refresh_from_db()
    assert invite.uses == 1


def test_accepting_twice_by_link_adds_no_duplicate(newcomer_client, newcomer, invite, space):
    newcomer_client.post(page_url(invite))

    response = newcomer_client.post(page_url(invite))

    assert response.status_code == 302
    assert space.memberships.filter(user=newcomer).count() == 1
    invite.refresh_from_db()
    assert invite.uses == 1


def test_an_invite_link_serves_several_people(newcomer_client, outsider_client, invite, space):
    newcomer_client.post(page_url(invite))
    outsider_client.post(page_url(invite))

    assert space.memberships.filter(role=SpaceMember.Role.MEMBER).count() == 3
    invite.refresh_from_db()
    assert invite.uses == 2


def test_existing_owner_opening_an_invite_keeps_the_owner_role(owner_client, owner, invite, space):
    response = owner_client.post(page_url(invite))

    assert response.status_code == 302
    assert space.memberships.get(user=owner).role == SpaceMember.Role.OWNER


def test_expired_invite_page_is_410_and_does_not_name_the_space(newcomer_client, expired_invite):
    response = newcomer_client.get(page_url(expired_invite))

    assert response.status_code == 410
    assert expired_invite.space.name not in response.content.decode()
    assert "Owner&#x27;s space" not in response.content.decode()


def test_expired_invite_is_refused_by_link(newcomer_client, newcomer, expired_invite, space):
    response = newcomer_client.post(page_url(expired_invite))

    assert response.status_code == 410
    assert not space.memberships.filter(user=newcomer).exists()
    expired_invite.refresh_from_db()
    assert expired_invite.uses == 0


def test_revoked_invite_is_refused_by_link(newcomer_client, newcomer, invite, space):
    SpaceInvite.objects.filter(pk=invite.pk).update(revoked=True)

    assert newcomer_client.get(page_url(invite)).status_code == 410
    assert newcomer_client.post(page_url(invite)).status_code == 410
    assert not space.memberships.filter(user=newcomer).exists()


def test_unknown_invite_token_is_404(newcomer_client, newcomer_api):
    url = reverse("invite-accept", kwargs={"token": "no-such-token"})
    api_url = reverse("api-invite-accept", kwargs={"token": "no-such-token"})

    assert newcomer_client.get(url).status_code == 404
    assert newcomer_client.post(url).status_code == 404
    assert newcomer_api.post(api_url).status_code == 404


# --- Accepting through the API ----------------------------------------------------------------


def test_new_user_accepts_through_the_api_and_becomes_member(newcomer_api, newcomer, invite, space):
    response = newcomer_api.post(api_accept_url(invite))

    assert response.status_code == 200
    assert response.json()["slug"] == space.slug
    assert response.json()["role"] == "MEMBER"
    assert space.memberships.get(user=newcomer).role == SpaceMember.Role.MEMBER


def test_accepting_twice_through_the_api_adds_no_duplicate(newcomer_api, newcomer, invite, space):
    newcomer_api.post(api_accept_url(invite))

    response = newcomer_api.post(api_accept_url(invite))

    assert response.status_code == 200
    assert space.memberships.filter(user=newcomer).count() == 1


def test_expired_invite_is_refused_through_the_api_with_a_code(
    newcomer_api, newcomer, expired_invite, space
):
    response = newcomer_api.post(api_accept_url(expired_invite))

    assert response.status_code == 400
    assert response.json()["code"] == "invite_expired"
    assert space.name not in response.content.decode()
    assert not space.memberships.filter(user=newcomer).exists()


@pytest.mark.django_db
def test_anonymous_api_accept_is_refused(invite, space):
    response = APIClient().post(api_accept_url(invite))

    assert response.status_code in (401, 403)
    assert space.memberships.count() == 2


# --- Signed out: sign-in and sign-up say which space, and keep the invitation ---------------------


def _invite_login_page(client: Client, invite: SpaceInvite):
    """Where a signed-out visitor of the link lands (the sign-in page with ``next``)."""
    redirect = client.get(page_url(invite))
    assert redirect.status_code == 302
    return client.get(redirect.url)


@pytest.mark.django_db
def test_signed_out_invite_link_says_sign_in_or_create_an_account_to_join_the_space(
    client, invite, space
):
    page = _invite_login_page(client, invite).content.decode()

    assert "to join “Owner&#x27;s space”." in page
    notice = page.split('id="invite-notice"', 1)[1].split("</p>", 1)[0]
    assert ">Sign in</a> or <a" in notice and ">create an account</a>" in notice


@pytest.mark.django_db
def test_every_sign_in_and_sign_up_link_keeps_the_invitation(client, invite):
    page = _invite_login_page(client, invite).content.decode()
    keep = f"next=%2Finvite%2F{invite.token}%2F"

    topbar = page.split('<header class="topbar">', 1)[1].split("</header>", 1)[0]
    assert f'href="{reverse("account_signup")}?{keep}"' in topbar
    assert f'href="{reverse("account_login")}?{keep}"' in topbar
    notice = page.split('id="invite-notice"', 1)[1].split("</p>", 1)[0]
    assert notice.count(keep) == 2
    # allauth's own "sign up" link in the page keeps it too.
    assert page.count(f"{reverse('account_signup')}?{keep}") >= 3


@pytest.mark.django_db
def test_the_sign_up_page_names_the_space_and_posts_the_invitation_on(client, invite):
    url = f"{reverse('account_signup')}?next={page_url(invite)}"
    page = client.get(url).content.decode()

    assert "to join “Owner&#x27;s space”." in page
    assert f'name="next" value="{page_url(invite)}"' in page


@pytest.mark.django_db
def test_a_new_account_made_from_the_invitation_comes_back_to_it(client, invite, space):
    """Signing up from the invitation and confirming the address lands on the invitation."""
    from django.core import mail

    client.post(
        reverse("account_signup"),
        {
            "email": "new.person@example.com",
            "password1": "a-long-enough-passphrase-9",
            "password2": "a-long-enough-passphrase-9",
            "next": page_url(invite),
        },
    )
    link = next(word for word in mail.outbox[-1].body.split() if "/accounts/confirm-email/" in word)
    confirm = client.get(link)
    response = client.post(confirm.wsgi_request.path) if confirm.status_code == 200 else confirm

    assert response.status_code == 302
    assert response.url == page_url(invite)


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["expired", "revoked", "unknown"])
def test_no_space_is_named_for_a_dead_invitation(client, invite, space, state):
    token = invite.token
    if state == "expired":
        SpaceInvite.objects.filter(pk=invite.pk).update(expires_at=timezone.now())
    elif state == "revoked":
        SpaceInvite.objects.filter(pk=invite.pk).update(revoked=True)
    else:
        token = "no-such-token"

    page = client.get(f"{reverse('account_login')}?next=/invite/{token}/").content.decode()

    assert "invite-notice" not in page
    assert space.name not in page.replace("&#x27;", "'")


@pytest.mark.django_db
def test_the_top_bar_does_not_carry_a_foreign_next(client):
    page = client.get(f"{reverse('account_login')}?next=https://evil.example/").content.decode()
    topbar = page.split('<header class="topbar">', 1)[1].split("</header>", 1)[0]
    assert "evil.example" not in topbar
