"""Spaces API: list and create, detail, members; outsiders get 404 and learn nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from spaces.models import Space, SpaceMember
from spaces.services import space_create
from tests.factories import SpaceMemberFactory

LIST_URL = reverse("api-space-list")


def detail_url(space: Space) -> str:
    return reverse("api-space-detail", kwargs={"slug": space.slug})


def members_url(space: Space) -> str:
    return reverse("api-member-list", kwargs={"slug": space.slug})


def member_url(space: Space, membership: SpaceMember) -> str:
    return reverse("api-member-remove", kwargs={"slug": space.slug, "member_id": membership.pk})


def test_space_list_gives_my_spaces_with_my_role(member_api, space, outsider):
    space_create(owner=outsider, name="Not yours")

    response = member_api.get(LIST_URL)

    assert response.status_code == 200
    assert [(s["slug"], s["name"], s["role"]) for s in response.json()] == [
        (space.slug, space.name, "MEMBER")
    ]


def test_space_list_gives_each_space_once_with_the_owner_role(owner_api, space):
    response = owner_api.get(LIST_URL)

    assert [(s["slug"], s["role"]) for s in response.json()] == [(space.slug, "OWNER")]


def test_outsider_space_list_shows_nothing_of_other_spaces(outsider_api, space):
    response = outsider_api.get(LIST_URL)

    assert response.status_code == 200
    assert response.json() == []


def test_create_space_makes_me_owner(outsider_api, outsider):
    response = outsider_api.post(LIST_URL, {"name": "Reading group"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Reading group"
    assert body["role"] == "OWNER"
    assert body["slug"].startswith("reading-group-")
    space = Space.objects.get(slug=body["slug"])
    assert space.memberships.get(user=outsider).role == SpaceMember.Role.OWNER


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 121}])
def test_create_space_with_a_bad_name_is_400(owner_api, body):
    before = Space.objects.count()

    response = owner_api.post(LIST_URL, body, format="json")

    assert response.status_code == 400
    assert "name" in response.json()
    assert Space.objects.count() == before


def test_space_detail_for_owner_and_member(owner_api, member_api, space):
    assert owner_api.get(detail_url(space)).json()["role"] == "OWNER"
    response = member_api.get(detail_url(space))
    assert response.status_code == 200
    assert response.json()["name"] == space.name
    assert response.json()["role"] == "MEMBER"


def test_outsider_gets_404_for_space_detail_and_learns_nothing(outsider_api, space):
    response = outsider_api.get(detail_url(space))

    assert response.status_code == 404
    assert space.name not in response.content.decode()
    assert set(response.json()) <= {"detail", "code"}


def test_member_list_shows_owner_first_without_primary_keys_of_users(
    member_api, space, owner, member
):
    response = member_api.get(members_url(space))

    assert response.status_code == 200
    rows = response.json()
    assert [(r["identity"], r["role"]) for r in rows] == [
        (owner.identity, "OWNER"),
        (member.identity, "MEMBER"),
    ]
    assert rows[0]["name"] == "Olivia Owner"


def test_owner_removes_a_member(owner_api, member_api, space, member):
    membership = space.memberships.get(user=member)

    response = owner_api.delete(member_url(space, membership))

    assert response.status_code == 204
    assert not space.memberships.filter(user=member).exists()
    assert member_api.get(detail_url(space)).status_code == 404


def test_member_cannot_remove_the_owner(member_api, space, owner):
    response = member_api.delete(member_url(space, space.memberships.get(user=owner)))

    assert response.status_code == 403
    assert response.json()["code"] == "owner_required"
    assert space.memberships.filter(user=owner).exists()


def test_member_cannot_remove_another_member(member_api, space):
    other = SpaceMemberFactory(space=space)

    response = member_api.delete(member_url(space, other))

    assert response.status_code == 403
    assert space.memberships.filter(pk=other.pk).exists()


def test_last_owner_cannot_be_removed(owner_api, space, owner):
    response = owner_api.delete(member_url(space, space.memberships.get(user=owner)))

    assert response.status_code == 400
    assert response.json()["code"] == "last_owner"
    assert space.memberships.filter(user=owner, role=SpaceMember.Role.OWNER).exists()


def test_an_owner_can_be_removed_while_another_owner_remains(owner_api, space, owner, member):
    space.memberships.filter(user=member).update(role=SpaceMember.Role.OWNER)

    response = owner_api.delete(member_url(space, space.memberships.get(user=member)))

    assert response.status_code == 204
    assert list(space.memberships.values_list("user", flat=True)) == [owner.pk]


def test_removing_a_membership_of_another_space_is_404(owner_api, space, outsider):
    other = space_create(owner=outsider, name="Elsewhere")
    other_membership = other.memberships.get(user=outsider)

    response = owner_api.delete(member_url(space, other_membership))

    assert response.status_code == 404
    assert other.memberships.filter(pk=other_membership.pk).exists()


def outsider_routes(space: Space, member_id: int) -> list[tuple[str, str, dict]]:
    slug = {"slug": space.slug}
    return [
        ("get", reverse("api-space-detail", kwargs=slug), {}),
        ("get", reverse("api-member-list", kwargs=slug), {}),
        ("delete", reverse("api-member-remove", kwargs={**slug, "member_id": member_id}), {}),
        ("post", reverse("api-invite-create", kwargs=slug), {}),
        ("get", reverse("api-space-session-list", kwargs=slug), {}),
        ("post", reverse("api-space-session-list", kwargs=slug), {"title": "Sneaky"}),
    ]


def test_outsider_gets_404_on_every_space_api_route(outsider_api, space, owner, member):
    member_id = space.memberships.get(user=member).pk
    before = (space.memberships.count(), space.invites.count(), space.sessions.count())

    for method, url, body in outsider_routes(space, member_id):
        response = getattr(outsider_api, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
        content = response.content.decode()
        assert space.name not in content
        assert owner.email not in content

    assert (space.memberships.count(), space.invites.count(), space.sessions.count()) == before


@pytest.mark.django_db
def test_anonymous_space_api_calls_are_refused(space):
    client = APIClient()

    for method, url, body in outsider_routes(space, 1):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code in (401, 403), (method, url)
        assert space.name not in response.content.decode()
