"""Session pages: create from the space page, the session page, ending it; outsiders get 404."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from sessions_app.models import VideoSession
from spaces.models import Space
from tests.factories import VideoSessionFactory


def page_url(session: VideoSession) -> str:
    return reverse("sessions:detail", kwargs={"slug": session.slug})


def end_url(session: VideoSession) -> str:
    return reverse("sessions:end", kwargs={"slug": session.slug})


def create_url(space: Space) -> str:
    return reverse("session-create", kwargs={"slug": space.slug})


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.django_db
def test_anonymous_is_redirected_to_login_from_session_page(client, video_session):
    response = client.get(page_url(video_session))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_member_sees_the_session_page(member_client, member, video_session, settings):
    settings.LIVEKIT_ENABLED = False

    response = member_client.get(page_url(video_session))

    assert response.status_code == 200
    assert "Weekly sync" in response.content.decode()
    assert response.context["page_config"] == {
        "slug": video_session.slug,
        "status": "CREATED",
        "identity": member.identity,
        "name": "Max Member",
        "canEnd": False,
        "livekitEnabled": False,
        "videoMode": "mesh",
        "meshMaxPeers": settings.MESH_MAX_PARTICIPANTS,
    }


def test_small_meeting_uses_the_mesh_even_with_livekit_configured(
    member_client, video_session, settings
):
    settings.LIVEKIT_ENABLED = True
    video_session.peer_to_peer = True
    video_session.save()

    config = member_client.get(page_url(video_session)).context["page_config"]

    assert config["videoMode"] == "mesh"
    assert config["livekitEnabled"] is False


def test_livekit_sessions_use_the_sfu(member_client, video_session, settings):
    settings.LIVEKIT_ENABLED = True

    assert (
        member_client.get(page_url(video_session)).context["page_config"]["videoMode"] == "livekit"
    )


def test_host_page_offers_to_end_the_session(owner_client, video_session):
    response = owner_client.get(page_url(video_session))

    assert response.context["can_end"] is True
    assert end_url(video_session) in response.content.decode()


def test_member_page_does_not_offer_to_end_the_hosts_session(member_client, video_session):
    response = member_client.get(page_url(video_session))

    assert response.context["can_end"] is False
    assert end_url(video_session) not in response.content.decode()


def test_outsider_gets_404_for_session_page_and_learns_nothing(outsider_client, video_session):
    response = outsider_client.get(page_url(video_session))

    assert response.status_code == 404
    content = response.content.decode()
    assert "Weekly sync" not in content
    assert video_session.space.name not in content
    assert "Olivia" not in content


def test_member_creates_a_session_from_the_space_page(member_client, member, space):
    response = member_client.post(create_url(space), {"title": "Retro", "language": "fr"})

    session = space.sessions.get()
    assert response.status_code == 302
    assert response.url == page_url(session)
    assert session.title == "Retro"
    assert session.created_by == member
    assert session.languages == ["fr"]
    assert session.status == VideoSession.Status.CREATED


def test_automatic_language_detection_stores_no_language(owner_client, space):
    owner_client.post(create_url(space), {"title": "Anything", "language": "auto"})

    assert space.sessions.get().languages == []


def test_session_without_a_title_is_not_created(owner_client, space):
    response = owner_client.post(create_url(space), {"title": "", "language": "en"})

    assert response.status_code == 302
    assert response.url == reverse("spaces:detail", kwargs={"slug": space.slug})
    assert not space.sessions.exists()
    assert any("needs a title" in m for m in messages_of(response))


def test_session_create_page_only_accepts_post(owner_client, space):
    assert owner_client.get(create_url(space)).status_code == 405


def test_space_page_lists_its_sessions(member_client, space, video_session):
    response = member_client.get(reverse("spaces:detail", kwargs={"slug": space.slug}))

    assert list(response.context["sessions"]) == [video_session]
    assert page_url(video_session) in response.content.decode()


def test_host_ends_the_session_from_its_page(owner_client, video_session):
    response = owner_client.post(end_url(video_session))

    assert response.status_code == 302
    assert response.url == page_url(video_session)
    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.ENDED
    page = owner_client.get(page_url(video_session))
    assert page.context["session"].is_ended
    assert end_url(video_session) not in page.content.decode()


def test_member_cannot_end_the_hosts_session_from_the_page(member_client, video_session):
    response = member_client.post(end_url(video_session))

    assert response.status_code == 302
    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.CREATED
    assert any("Only the host" in m for m in messages_of(response))


def test_space_owner_ends_a_members_session_from_the_page(owner_client, member, space):
    session = VideoSessionFactory(space=space, created_by=member)

    owner_client.post(end_url(session))

    session.refresh_from_db()
    assert session.status == VideoSession.Status.ENDED


def test_end_page_only_accepts_post(owner_client, video_session):
    response = owner_client.get(end_url(video_session))

    assert response.status_code == 405
    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.CREATED


def test_outsider_gets_404_when_ending_from_the_page(outsider_client, video_session):
    response = outsider_client.post(end_url(video_session))

    assert response.status_code == 404
    assert "Weekly sync" not in response.content.decode()
    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.CREATED
