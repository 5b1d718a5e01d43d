"""Space pages: create, list mine, the space page, removing members; outsiders get 404."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from spaces.models import Space, SpaceMember
from spaces.services import space_create

LIST_URL = reverse("spaces:list")


def detail_url(space: Space) -> str:
    return reverse("spaces:detail", kwargs={"slug": space.slug})


def remove_url(space: Space, member: SpaceMember) -> str:
    return reverse("spaces:member-remove", kwargs={"slug": space.slug, "member_id": member.pk})


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.django_db
def test_anonymous_is_redirected_to_login_from_space_list(client):
    response = client.get(LIST_URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


@pytest.mark.django_db
def test_anonymous_is_redirected_to_login_from_space_page(client, space):
    response = client.get(detail_url(space))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_space_list_shows_only_my_spaces(member_client, space, outsider):
    other = space_create(owner=outsider, name="Outsider's hideout")

    response = member_client.get(LIST_URL)

    assert response.status_code == 200
    assert list(response.context["spaces"]) == [space]
    content = response.content.decode()
    assert "Owner&#x27;s space" in content
    assert other.name not in content
    assert other.slug not in content


def test_space_list_is_empty_for_an_outsider(outsider_client, space):
    response = outsider_client.get(LIST_URL)

    assert response.status_code == 200
    assert list(response.context["spaces"]) == []
    assert "Owner&#x27;s space" not in response.content.decode()


def test_creating_a_space_makes_me_its_owner(outsider_client, outsider):
    response = outsider_client.post(LIST_URL, {"name": "  Book club  "})

    space = Space.objects.get(name="Book club")
    assert response.status_code == 302
    assert response.url == detail_url(space)
    assert space.slug.startswith("book-club-")
    assert space.created_by == outsider
    assert space.memberships.get().role == SpaceMember.Role.OWNER
    assert space.memberships.get().user == outsider


def test_two_spaces_with_the_same_name_get_different_slugs(owner_client):
    owner_client.post(LIST_URL, {"name": "Team"})
    owner_client.post(LIST_URL, {"name": "Team"})

    slugs = set(Space.objects.filter(name="Team").values_list("slug", flat=True))
    assert len(slugs) == 2


def test_creating_a_space_without_a_name_is_refused(owner_client):
    before = Space.objects.count()

    response = owner_client.post(LIST_URL, {"name": "   "})

    assert response.status_code == 400
    assert response.context["form"].errors["name"]
    assert Space.objects.count() == before


def test_space_page_for_the_owner_shows_members_and_invite_form(owner_client, space, member):
    response = owner_client.get(detail_url(space))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Owner&#x27;s space" in content
    assert member.email in content
    assert reverse("spaces:invite-create", kwargs={"slug": space.slug}) in content
    assert remove_url(space, space.memberships.get(user=member)) in content


def test_space_page_for_a_member_has_no_owner_controls(member_client, space, owner):
    response = member_client.get(detail_url(space))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Owner&#x27;s space" in content
    assert owner.name in content
    assert owner.email not in content, "members see each other's names, owners their emails"
    assert reverse("spaces:invite-create", kwargs={"slug": space.slug}) not in content
    assert reverse("spaces:delete", kwargs={"slug": space.slug}) not in content
    assert "/remove/" not in content
    assert response.context["invites"] == []


def test_outsider_gets_404_for_space_page_and_learns_nothing(outsider_client, space, owner):
    response = outsider_client.get(detail_url(space))

    assert response.status_code == 404
    content = response.content.decode()
    assert "Owner" not in content
    assert space.name not in content
    assert owner.email not in content


def test_unknown_space_is_404_like_a_hidden_one(outsider_client):
    response = outsider_client.get(reverse("spaces:detail", kwargs={"slug": "no-such-space"}))

    assert response.status_code == 404


def test_owner_removes_a_member_who_then_loses_access(owner_client, member_client, space, member):
    membership = space.memberships.get(user=member)

    response = owner_client.post(remove_url(space, membership))

    assert response.status_code == 302
    assert response.url == detail_url(space)
    assert not space.memberships.filter(user=member).exists()
    assert member_client.get(detail_url(space)).status_code == 404


def test_member_cannot_remove_anyone(member_client, space, owner):
    owner_membership = space.memberships.get(user=owner)

    response = member_client.post(remove_url(space, owner_membership))

    assert response.status_code == 302
    assert space.memberships.filter(user=owner).exists()
    assert any("Only an owner" in m for m in messages_of(response))


def test_last_owner_cannot_remove_themselves(owner_client, space, owner):
    owner_membership = space.memberships.get(user=owner)

    response = owner_client.post(remove_url(space, owner_membership))

    assert response.status_code == 302
    assert space.memberships.filter(user=owner, role=SpaceMember.Role.OWNER).exists()
    assert any("at least one owner" in m for m in messages_of(response))


def test_removing_a_member_of_another_space_is_404(owner_client, space, outsider):
    other = space_create(owner=outsider, name="Elsewhere")
    other_membership = other.memberships.get(user=outsider)

    response = owner_client.post(remove_url(space, other_membership))

    assert response.status_code == 404
    assert other.memberships.filter(user=outsider).exists()


def test_member_remove_page_only_accepts_post(owner_client, space, member):
    response = owner_client.get(remove_url(space, space.memberships.get(user=member)))

    assert response.status_code == 405
    assert space.memberships.filter(user=member).exists()


@pytest.mark.parametrize(
    ("method", "url_name", "extra"),
    [
        ("get", "spaces:detail", {}),
        ("post", "spaces:invite-create", {}),
        ("post", "spaces:member-remove", {"member_id": "member"}),
        ("post", "session-create", {}),
        ("post", "spaces:languages", {}),
    ],
)
def test_outsider_gets_404_on_every_space_url(
    outsider_client, space, member, method, url_name, extra
):
    kwargs = {"slug": space.slug}
    if extra:
        kwargs["member_id"] = space.memberships.get(user=member).pk
    before = (space.memberships.count(), space.invites.count(), space.sessions.count())

    response = getattr(outsider_client, method)(reverse(url_name, kwargs=kwargs), {"title": "x"})

    assert response.status_code == 404
    assert space.name not in response.content.decode()
    assert (space.memberships.count(), space.invites.count(), space.sessions.count()) == before


# --- The new-session form (issue 16) ----------------------------------------------------------


def _session_form(html: str) -> str:
    return html.split('class="card session-create"', 1)[1].split("</form>", 1)[0]


@pytest.mark.django_db
def test_the_new_session_form_has_visible_labels_for_title_and_language(owner_client, space):
    form = _session_form(owner_client.get(detail_url(space)).content.decode())

    assert '<label for="id_title">Title</label>' in form
    assert '<label for="id_language">Language</label>' in form
    assert "visually-hidden" not in form


@pytest.mark.django_db
def test_without_livekit_there_is_no_peer_to_peer_choice(owner_client, space, settings):
    settings.LIVEKIT_ENABLED = False
    form = _session_form(owner_client.get(detail_url(space)).content.decode())

    assert "peer_to_peer" not in form
    assert "Small meeting" not in form


@pytest.mark.django_db
def test_with_livekit_the_peer_to_peer_choice_explains_itself_and_is_kept(
    owner_client, space, settings
):
    from sessions_app.models import VideoSession

    settings.LIVEKIT_ENABLED = True
    settings.MESH_MAX_PARTICIPANTS = 4
    form = _session_form(owner_client.get(detail_url(space)).content.decode())

    assert 'name="peer_to_peer"' in form
    assert "without the video server: for up to 4 people" in form
    assert 'aria-describedby="p2p-help"' in form

    owner_client.post(
        reverse("session-create", kwargs={"slug": space.slug}),
        {"title": "Small talk", "language": "en", "peer_to_peer": "on"},
    )
    assert VideoSession.objects.get(title="Small talk").peer_to_peer is True


@pytest.mark.django_db
def test_the_language_list_marks_what_the_offline_engine_cannot_transcribe(
    owner_client, space, settings
):
    settings.STT_PROVIDER = "local"
    settings.OFFLINE_STT_MODEL_DIR = settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR = ""
    form = _session_form(owner_client.get(detail_url(space)).content.decode())

    assert '<option value="space" selected>Space default (English)</option>' in form
    assert '<option value="en">English</option>' in form
    assert '<option value="ru">Russian — not transcribed here</option>' in form
    assert "This server transcribes English only" in form
