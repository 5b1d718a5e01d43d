"""Limits per space: settings overridden by ``SpaceLimits`` (edited in the Space admin), the
staff's kill switch in the admin, and the participants limit when joining a session."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from sessions_app.models import Participant
from sessions_app.services import session_join
from spaces.limits import limits_for_space, new_runs_disabled_message
from spaces.models import SpaceLimits, SpaceMember, TranscriptionSwitch
from tests.factories import SpaceMemberFactory, UserFactory


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER = 5
    settings.TRANSCRIPTION_MAX_AUDIO_SENDERS = 10
    settings.TRANSCRIPTION_MAX_RUN_MINUTES = 0
    settings.TRANSCRIPTION_MAX_MONTH_MINUTES = 0
    settings.SESSION_MAX_PARTICIPANTS = 100
    settings.TRANSCRIPTION_NEW_RUNS_DISABLED = False
    settings.LIVEKIT_ENABLED = False


def join_url(session) -> str:
    return reverse("api-session-join", args=[session.slug])


@pytest.fixture
def staff_client(client, db):
    staff = UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


# --- resolution ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_space_without_overrides_uses_the_settings(space):
    limits = limits_for_space(space_id=space.pk)
    assert (limits.max_active_runs_per_user, limits.max_audio_senders) == (5, 10)
    assert (limits.max_run_minutes, limits.max_month_minutes, limits.max_participants) == (
        0,
        0,
        100,
    )


@pytest.mark.django_db
def test_each_override_replaces_only_its_own_setting(space):
    SpaceLimits.objects.create(space=space, max_run_minutes=45, max_participants=0)
    limits = limits_for_space(space_id=space.pk)
    assert limits.max_run_minutes == 45
    assert limits.max_participants == 0  # an explicit 0: unlimited in this space
    assert limits.max_active_runs_per_user == 5  # empty: the setting
    assert limits.max_audio_senders == 10


@pytest.mark.django_db
def test_kill_switch_is_off_until_either_switch_is_on(settings):
    assert new_runs_disabled_message() is None
    settings.TRANSCRIPTION_NEW_RUNS_DISABLED = True
    assert "switched off" in new_runs_disabled_message()


# --- admin -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_set_a_space_override_in_the_space_admin(staff_client, space, owner):
    url = reverse("admin:spaces_space_change", args=[space.pk])
    page = staff_client.get(url)
    assert page.status_code == 200
    assert b"limits-0-max_month_minutes" in page.content
    memberships = list(space.memberships.all())
    data = {
        "slug": space.slug,
        "name": space.name,
        "languages": '["en"]',
        "created_by": owner.pk,
        "created_at_0": space.created_at.strftime("%Y-%m-%d"),
        "created_at_1": space.created_at.strftime("%H:%M:%S"),
        "limits-TOTAL_FORMS": "1",
        "limits-INITIAL_FORMS": "0",
        "limits-MIN_NUM_FORMS": "0",
        "limits-MAX_NUM_FORMS": "1",
        "limits-0-max_month_minutes": "600",
        "limits-0-max_participants": "",
        "limits-0-space": "",
        "memberships-TOTAL_FORMS": str(len(memberships)),
        "memberships-INITIAL_FORMS": str(len(memberships)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, m in enumerate(memberships):
        data |= {
            f"memberships-{i}-id": m.pk,
            f"memberships-{i}-space": space.pk,
            f"memberships-{i}-user": m.user_id,
            f"memberships-{i}-role": m.role,
            f"memberships-{i}-joined_at_0": m.joined_at.strftime("%Y-%m-%d"),
            f"memberships-{i}-joined_at_1": m.joined_at.strftime("%H:%M:%S"),
        }
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    limits = limits_for_space(space_id=space.pk)
    assert limits.max_month_minutes == 600
    assert limits.max_participants == 100


@pytest.mark.django_db
def test_staff_flip_the_kill_switch_in_the_admin_without_a_redeploy(staff_client):
    changelist = staff_client.get(reverse("admin:spaces_transcriptionswitch_changelist"))
    assert changelist.status_code == 302
    response = staff_client.post(
        changelist.url, {"new_runs_disabled": "on", "message": "Back at 14:00 UTC."}
    )
    assert response.status_code == 302
    assert new_runs_disabled_message() == "Back at 14:00 UTC."
    switch = TranscriptionSwitch.objects.get()
    assert switch.updated_by.email == "staff@example.com"
    staff_client.post(changelist.url, {"message": ""})
    assert new_runs_disabled_message() is None
    assert TranscriptionSwitch.objects.count() == 1


@pytest.mark.django_db
def test_non_staff_cannot_reach_the_kill_switch(member_client):
    response = member_client.get(reverse("admin:spaces_transcriptionswitch_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response.url


@pytest.mark.django_db
def test_staff_without_the_permission_cannot_flip_the_switch(client):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_space"))
    client.force_login(staff)
    TranscriptionSwitch.objects.create()
    url = reverse("admin:spaces_transcriptionswitch_change", args=[1])
    assert client.post(url, {"new_runs_disabled": "on"}).status_code == 403
    assert new_runs_disabled_message() is None


# --- participants ----------------------------------------------------------------------------


def _members(space, n: int) -> list:
    users = [UserFactory() for _ in range(n)]
    for user in users:
        SpaceMemberFactory(space=space, user=user, role=SpaceMember.Role.MEMBER)
    return users


@pytest.mark.django_db
def test_join_at_the_participant_limit_is_allowed_and_over_it_refused(
    settings, space, video_session, owner, member
):
    settings.SESSION_MAX_PARTICIPANTS = 2
    session_join(session=video_session, user=owner)
    session_join(session=video_session, user=member)  # the second of two: allowed
    (third,) = _members(space, 1)
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(third)
    response = api.post(join_url(video_session))
    assert response.status_code == 429
    assert response.json()["code"] == "session_full"
    assert "limit is 2" in response.json()["detail"]
    assert not Participant.objects.filter(user=third).exists()


@pytest.mark.django_db
def test_someone_already_in_a_full_session_can_rejoin(settings, video_session, owner, member_api):
    settings.SESSION_MAX_PARTICIPANTS = 1
    session_join(session=video_session, user=owner)
    assert member_api.post(join_url(video_session)).status_code == 429
    settings.SESSION_MAX_PARTICIPANTS = 2
    assert member_api.post(join_url(video_session)).status_code == 200
    settings.SESSION_MAX_PARTICIPANTS = 1
    assert member_api.post(join_url(video_session)).status_code == 200  # a reload, a 2nd tab


@pytest.mark.django_db
def test_a_participant_who_left_frees_a_place(settings, space, video_session, owner, member_api):
    settings.SESSION_MAX_PARTICIPANTS = 1
    session_join(session=video_session, user=owner)
    Participant.objects.filter(user=owner).update(left_at=video_session.created_at)
    assert member_api.post(join_url(video_session)).status_code == 200


@pytest.mark.django_db
def test_space_participant_override_beats_the_setting(settings, space, video_session, owner):
    settings.SESSION_MAX_PARTICIPANTS = 1
    SpaceLimits.objects.create(space=space, max_participants=0)
    for user in [owner, *_members(space, 3)]:
        session_join(session=video_session, user=user)
    assert Participant.objects.filter(session=video_session).count() == 4


@pytest.mark.django_db
def test_outsider_gets_404_for_a_full_session(settings, video_session, owner, outsider_api):
    settings.SESSION_MAX_PARTICIPANTS = 1
    session_join(session=video_session, user=owner)
    assert outsider_api.post(join_url(video_session)).status_code == 404
