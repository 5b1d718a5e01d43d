"""Owners see and revoke each invitation link; a removed member cannot rejoin with an old one.

Issue 13: links are multi-use for up to 30 days; before this, owners could not revoke them and
a removed member walked back in with the link they once used.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from spaces.models import SpaceInvite, SpaceMember
from spaces.services import member_remove
from tests.factories import SpaceInviteFactory


@pytest.fixture
def invite(space, owner) -> SpaceInvite:
    return SpaceInviteFactory(space=space, created_by=owner)


def _accept_page(invite: SpaceInvite) -> str:
    return reverse("invite-accept", kwargs={"token": invite.token})


def _accept_api(invite: SpaceInvite) -> str:
    return reverse("api-invite-accept", kwargs={"token": invite.token})


def _list_api(space) -> str:
    return reverse("api-invite-create", kwargs={"slug": space.slug})


def _revoke_api(space, invite: SpaceInvite) -> str:
    return reverse("api-invite-revoke", kwargs={"slug": space.slug, "invite_id": invite.pk})


def _remove(space, user, by) -> None:
    member_remove(space=space, member=space.memberships.get(user=user), by=by)


# --- a removed member and old links -------------------------------------------------------------


def test_a_removed_member_cannot_rejoin_with_the_link_they_used(
    invite, space, owner, member, member_client, member_api
):
    _remove(space, member, owner)

    page = member_client.post(_accept_page(invite))
    assert page.status_code == 410
    assert "removed from this space" in page.content.decode()
    api = member_api.post(_accept_api(invite))
    assert api.status_code == 403
    assert api.json()["code"] == "invite_predates_removal"
    assert not SpaceMember.objects.filter(space=space, user=member).exists()
    assert SpaceInvite.objects.get(pk=invite.pk).uses == 0


def test_a_link_created_after_the_removal_lets_them_back_in(space, owner, member, member_api):
    _remove(space, member, owner)
    again = SpaceInviteFactory(space=space, created_by=owner)
    response = member_api.post(_accept_api(again))
    assert response.status_code == 200
    assert SpaceMember.objects.filter(space=space, user=member, role="MEMBER").exists()


def test_removed_twice_the_link_of_the_first_return_no_longer_works(
    space, owner, member, member_api
):
    _remove(space, member, owner)
    again = SpaceInviteFactory(space=space, created_by=owner)
    assert member_api.post(_accept_api(again)).status_code == 200
    _remove(space, member, owner)
    assert member_api.post(_accept_api(again)).status_code == 403


def test_others_still_join_with_a_link_made_before_someone_was_removed(
    invite, space, owner, member, outsider_api, outsider
):
    _remove(space, member, owner)
    assert outsider_api.post(_accept_api(invite)).status_code == 200
    assert SpaceMember.objects.filter(space=space, user=outsider).exists()


# --- listing and revoking -----------------------------------------------------------------------


def test_owner_lists_live_links_with_uses_expiry_and_whole_url(owner_api, space, owner, invite):
    SpaceInviteFactory(space=space, created_by=owner, revoked=True)
    SpaceInviteFactory(
        space=space, created_by=owner, expires_at=timezone.now() - timedelta(minutes=1)
    )
    SpaceInvite.objects.filter(pk=invite.pk).update(uses=3)

    response = owner_api.get(_list_api(space))
    assert response.status_code == 200
    [link] = response.json()
    assert link["id"] == invite.pk
    assert link["uses"] == 3
    assert link["valid"] is True and link["revoked"] is False
    assert link["url"] == f"http://testserver/invite/{invite.token}/"
    assert link["expires_at"] and link["created_at"]


def test_a_member_may_not_list_links_and_an_outsider_learns_nothing(
    member_api, outsider_api, space, invite
):
    assert member_api.get(_list_api(space)).status_code == 403
    assert outsider_api.get(_list_api(space)).status_code == 404


def test_owner_revokes_a_link_through_the_api_and_it_admits_nobody(
    owner_api, outsider_api, space, invite
):
    assert owner_api.delete(_revoke_api(space, invite)).status_code == 204
    assert SpaceInvite.objects.get(pk=invite.pk).revoked
    assert owner_api.get(_list_api(space)).json() == []
    assert outsider_api.post(_accept_api(invite)).status_code == 400


def test_member_cannot_revoke_and_outsider_gets_404(member_api, outsider_api, space, invite):
    assert member_api.delete(_revoke_api(space, invite)).status_code == 403
    assert outsider_api.delete(_revoke_api(space, invite)).status_code == 404
    assert not SpaceInvite.objects.get(pk=invite.pk).revoked


def test_revoking_a_link_of_another_space_is_404(owner_api, owner, space):
    from spaces.services import space_create

    other = space_create(owner=owner, name="Other")
    foreign = SpaceInviteFactory(space=other, created_by=owner)
    assert owner_api.delete(_revoke_api(space, foreign)).status_code == 404
    assert not SpaceInvite.objects.get(pk=foreign.pk).revoked


def test_owner_revokes_a_link_from_the_space_page(owner_client, member_client, space, invite):
    url = reverse("spaces:invite-revoke", kwargs={"slug": space.slug, "invite_id": invite.pk})
    assert member_client.post(url).status_code == 302
    assert not SpaceInvite.objects.get(pk=invite.pk).revoked

    response = owner_client.post(url, follow=True)
    assert "Invitation link revoked" in response.content.decode()
    assert SpaceInvite.objects.get(pk=invite.pk).revoked
    assert invite.token not in response.content.decode()


def test_revoke_page_only_accepts_post(owner_client, space, invite):
    url = reverse("spaces:invite-revoke", kwargs={"slug": space.slug, "invite_id": invite.pk})
    assert owner_client.get(url).status_code == 405


def test_space_page_shows_each_link_whole_with_copy_revoke_uses_and_expiry(
    owner_client, space, invite
):
    SpaceInvite.objects.filter(pk=invite.pk).update(uses=2)
    html = owner_client.get(reverse("spaces:detail", kwargs={"slug": space.slug})).content.decode()
    assert f'<code class="invite-link" id="invite-{invite.pk}">' in html
    assert f"http://testserver/invite/{invite.token}/</code>" in html
    assert f'data-copy-target="invite-{invite.pk}"' in html
    assert "used 2 times" in html and "expires " in html
    assert reverse("spaces:invite-revoke", args=[space.slug, invite.pk]) in html
    assert "js/copy.js" in html


# --- email addresses: owners only --------------------------------------------------------------


def test_members_do_not_see_each_others_email_addresses(member_api, member_client, space, owner):
    members = member_api.get(reverse("api-member-list", kwargs={"slug": space.slug})).json()
    assert {m["email"] for m in members} == {None}
    html = member_client.get(reverse("spaces:detail", kwargs={"slug": space.slug}))
    assert owner.email not in html.content.decode()


def test_owners_see_the_members_email_addresses(owner_api, owner_client, space, member):
    members = owner_api.get(reverse("api-member-list", kwargs={"slug": space.slug})).json()
    assert member.email in {m["email"] for m in members}
    html = owner_client.get(reverse("spaces:detail", kwargs={"slug": space.slug}))
    assert member.email in html.content.decode()


# --- deleting a space and a session ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_only_an_owner_deletes_a_space_through_the_api(owner_api, member_api, outsider_api, space):
    url = reverse("api-space-detail", kwargs={"slug": space.slug})
    assert outsider_api.delete(url).status_code == 404
    assert member_api.delete(url).status_code == 403
    assert owner_api.delete(url).status_code == 204
    assert owner_api.get(url).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_space_page_deletes_only_when_the_name_is_typed(owner_client, space):
    url = reverse("spaces:delete", kwargs={"slug": space.slug})
    owner_client.post(url, {"confirm_name": "wrong"})
    assert type(space).objects.filter(pk=space.pk).exists()
    response = owner_client.post(url, {"confirm_name": space.name})
    assert response.status_code == 302 and response["Location"] == reverse("spaces:list")
    assert not type(space).objects.filter(pk=space.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_only_the_host_or_an_owner_deletes_a_session(
    owner_api, member_api, outsider_api, video_session
):
    url = reverse("api-session-detail", kwargs={"slug": video_session.slug})
    assert outsider_api.delete(url).status_code == 404
    assert member_api.delete(url).status_code == 403
    assert owner_api.delete(url).status_code == 204
    assert owner_api.get(url).status_code == 404
