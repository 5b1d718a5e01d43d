"""Session pages: create from the space page, the session page, ending it; outsiders get 404."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from sessions_app.models import VideoSession
from spaces.models import Space
from tests.factories import SpaceMemberFactory, UserFactory, VideoSessionFactory


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
        "lowConfidence": settings.TRANSCRIPT_LOW_CONFIDENCE,
        "participantsUrl": f"/api/sessions/{video_session.slug}/participants",
        "usageUrl": None,
        "costRefreshSeconds": 60,
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


def test_host_page_offers_to_end_the_session_after_a_confirmation(owner_client, video_session):
    response = owner_client.get(page_url(video_session))

    assert response.context["can_end"] is True
    content = response.content.decode()
    assert end_url(video_session) in content
    # "End session" only opens the question; the form that ends it is inside the dialog.
    assert '<button type="button" id="btn-end"' in content
    dialog = content[content.index('<dialog id="end-dialog"') : content.index("</dialog>")]
    assert 'id="end-form"' in dialog and "End for everyone" in dialog and "Cancel" in dialog


def test_member_page_does_not_offer_to_end_the_hosts_session(member_client, video_session):
    response = member_client.get(page_url(video_session))

    assert response.context["can_end"] is False
    content = response.content.decode()
    assert end_url(video_session) not in content
    assert 'id="btn-end"' not in content


def test_everyone_in_the_session_may_start_and_stop_transcription(
    owner_client, member_client, video_session
):
    for client in (owner_client, member_client):
        content = client.get(page_url(video_session)).content.decode()
        assert 'id="btn-transcription-start"' in content
        assert 'id="btn-transcription-stop"' in content


def test_only_those_who_may_end_it_see_the_live_cost(owner_client, member_client, video_session):
    host = owner_client.get(page_url(video_session))
    member = member_client.get(page_url(video_session))

    usage = f"/api/sessions/{video_session.slug}/transcription/usage"
    assert host.context["page_config"]["usageUrl"] == usage
    assert 'id="session-cost"' in host.content.decode()
    assert "Updated every minute while transcribing." in host.content.decode()
    assert 'id="session-cost"' not in member.content.decode()


def test_media_buttons_start_by_saying_they_are_off(member_client, video_session):
    content = member_client.get(page_url(video_session)).content.decode()

    assert 'aria-pressed="false" disabled>Mic off</button>' in content
    assert 'aria-pressed="false" disabled>Camera off</button>' in content


def test_participants_are_listed_present_first_with_the_viewer_marked(
    member_client, owner, member, video_session
):
    from django.utils import timezone

    from sessions_app.services import participant_upsert

    gone = UserFactory(display_name="Gina Gone")
    SpaceMemberFactory(space=video_session.space, user=gone)
    for user in (gone, owner, member):
        participant_upsert(session=video_session, user=user)
    video_session.participants.filter(user=gone).update(left_at=timezone.now())

    response = member_client.get(page_url(video_session))

    assert [p.name for p in response.context["participants"]] == [
        "Olivia Owner",
        "Max Member",
        "Gina Gone",
    ]
    assert response.context["present_count"] == 2
    content = response.content.decode()
    assert '<span id="participant-count" class="muted">2 here</span>' in content
    mine = content[content.index(f'data-identity="{member.identity}"') :]
    assert mine[: mine.index("</li>")].count("(you)") == 1
    theirs = content[content.index(f'data-identity="{gone.identity}"') :]
    assert 'data-present="false" class="left"' in theirs[: theirs.index(">")]


def test_outsider_gets_404_for_session_page_and_learns_nothing(outsider_client, video_session):
    response = outsider_client.get(page_url(video_session))

    assert response.status_code == 404
    content = response.content.decode()
    assert "Weekly sync" not in content
    assert video_session.space.name not in content
    assert "Olivia" not in content


def test_member_creates_a_session_from_the_space_page(member_client, member, space, settings):
    settings.STT_PROVIDER = "gladia"
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
