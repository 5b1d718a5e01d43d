"""Analysis and task endpoints, the analysis card and the tick-off form: who may do what.
(Proposals, accepting and dismissing: test_task_proposals_api.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from sessions_app.analysis.services import analysis_claim, analysis_request
from sessions_app.models import SessionAnalysis, Task, VideoSession
from sessions_app.services import session_end
from tests.factories import VideoSessionFactory
from tests.sessions_app.analysis_support import LEGAL, MEETING_LINES, accept_all, store_lines

S = SessionAnalysis.Status


@pytest.fixture(autouse=True)
def _runner(settings):
    settings.ANALYSIS_RUNNER = "celery"
    settings.ANALYSIS_PROVIDER = "offline"


@pytest.fixture
def analysed(video_session, owner, django_capture_on_commit_callbacks) -> VideoSession:
    """An ended session whose analysis proposed three tasks, all accepted by the owner."""
    store_lines(video_session, MEETING_LINES)
    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=video_session, by=owner)
    accept_all(video_session, owner)
    return video_session


def analysis_url(session: VideoSession) -> str:
    return reverse("api-session-analysis", kwargs={"slug": session.slug})


def rerun_url(session: VideoSession) -> str:
    return reverse("api-session-analysis-rerun", kwargs={"slug": session.slug})


def tasks_url(session: VideoSession) -> str:
    return reverse("api-space-tasks", kwargs={"slug": session.space.slug})


def task_url(task: Task) -> str:
    return reverse("api-task-update", kwargs={"task_id": task.pk})


# --- GET /api/sessions/<slug>/analysis ---------------------------------------------------------


def test_member_reads_the_done_analysis(member_api, analysed):
    response = member_api.get(analysis_url(analysed))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "DONE" and body["provider"] == "offline"
    assert body["session"] == analysed.slug
    assert "launch checklist" in body["topics"]
    legal = next(i for i in body["action_items"] if i["text"] == LEGAL)
    assert legal == {
        "text": LEGAL,
        "owner": "Max Member",
        "due": "by Friday",
        "start": 22.5,
        "low_confidence": False,
    }
    assert body["stale"] is False and body["transcript_edited_at"] is None
    assert {s["name"] for s in body["speaker_stats"]} == {"Olivia Owner", "Max Member"}
    assert set(body["speaker_stats"][0]) == {
        "identity",
        "name",
        "talk_seconds",
        "words",
        "wpm",
        "turns",
    }


def test_analysis_before_the_session_ends_is_not_requested(member_api, video_session):
    response = member_api.get(analysis_url(video_session))
    assert response.status_code == 200
    assert response.json()["status"] == "NONE"


def test_outsider_gets_404_for_the_analysis(outsider_api, analysed):
    response = outsider_api.get(analysis_url(analysed))
    assert response.status_code == 404
    assert "launch" not in response.content.decode()


def test_anonymous_is_refused_the_analysis(analysed):
    assert APIClient().get(analysis_url(analysed)).status_code in (401, 403)


# --- POST /api/sessions/<slug>/analysis/rerun -------------------------------------------------


def test_host_reruns_the_analysis(owner_api, analysed, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_api.post(rerun_url(analysed))

    assert response.status_code == 202
    assert response.json()["status"] == "PENDING"
    analysis = SessionAnalysis.objects.get(session=analysed)
    assert analysis.status == S.DONE and analysis.attempts == 1
    # The accepted tasks stay as they are, and nothing is proposed twice.
    assert Task.objects.filter(session=analysed).count() == 3
    assert not Task.objects.filter(session=analysed).exclude(status="ACCEPTED").exists()


def test_space_owner_who_is_not_the_host_may_rerun(member, owner, space, member_api, settings):
    session = VideoSessionFactory(space=space, created_by=member, title="Member's")
    session_end(session=session, by=member)
    SessionAnalysis.objects.filter(session=session).update(status=S.DONE)
    owner_api = APIClient()
    owner_api.force_authenticate(owner)
    assert owner_api.post(rerun_url(session)).status_code == 202


def test_member_who_is_not_host_gets_403_for_rerun(member_api, analysed):
    response = member_api.post(rerun_url(analysed))
    assert response.status_code == 403
    assert response.json()["code"] == "host_required"


def test_outsider_gets_404_for_rerun(outsider_api, analysed):
    assert outsider_api.post(rerun_url(analysed)).status_code == 404
    assert SessionAnalysis.objects.get(session=analysed).status == S.DONE


def test_anonymous_is_refused_rerun(analysed):
    assert APIClient().post(rerun_url(analysed)).status_code in (401, 403)


def test_rerun_while_running_is_409(owner_api, analysed):
    analysis_request(session=analysed)
    analysis_claim(session_id=analysed.pk)

    response = owner_api.post(rerun_url(analysed))

    assert response.status_code == 409
    assert response.json()["code"] == "analysis_running"


def test_a_pending_analysis_nobody_picked_up_can_be_rerun_once_stale(
    owner_api, analysed, settings, django_capture_on_commit_callbacks
):
    SessionAnalysis.objects.filter(session=analysed).update(status=S.PENDING)
    assert owner_api.post(rerun_url(analysed)).status_code == 409
    SessionAnalysis.objects.filter(session=analysed).update(
        created_at=timezone.now() - timedelta(seconds=settings.ANALYSIS_STALE_SECONDS + 1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert owner_api.post(rerun_url(analysed)).status_code == 202

    assert SessionAnalysis.objects.get(session=analysed).status == S.DONE


def test_rerun_of_a_live_session_is_409(owner_api, video_session):
    response = owner_api.post(rerun_url(video_session))
    assert response.status_code == 409
    assert response.json()["code"] == "session_not_ended"


# --- GET /api/spaces/<slug>/tasks -------------------------------------------------------------


def test_member_lists_the_spaces_tasks_and_filters_them(member_api, member, analysed):
    Task.objects.filter(title=LEGAL).update(done=True)

    everything = member_api.get(tasks_url(analysed)).json()
    open_ = member_api.get(tasks_url(analysed), {"done": "false"}).json()
    done = member_api.get(tasks_url(analysed), {"done": "true"}).json()

    assert len(everything) == 3
    assert LEGAL not in [t["title"] for t in open_] and len(open_) == 2
    # Open first; within a session in the order they were said.
    assert [t["start_seconds"] for t in everything] == [30.5, 36.5, 22.5]
    assert [t["title"] for t in done] == [LEGAL]
    legal = done[0]
    assert legal["assignee"] == member.identity and legal["assignee_name"] == "Max Member"
    assert legal["due_phrase"] == "by Friday" and legal["session"] == analysed.slug
    assert legal["transcript_url"] == f"/sessions/{analysed.slug}/?t=22"


def test_bad_task_filter_is_400(member_api, analysed):
    response = member_api.get(tasks_url(analysed), {"done": "perhaps"})
    assert response.status_code == 400
    assert "done" in response.json()


def test_outsider_gets_404_for_the_spaces_tasks(outsider_api, analysed):
    response = outsider_api.get(tasks_url(analysed))
    assert response.status_code == 404
    assert "legal" not in response.content.decode()


def test_anonymous_is_refused_the_task_list(analysed):
    assert APIClient().get(tasks_url(analysed)).status_code in (401, 403)


# --- PATCH /api/tasks/<id> ----------------------------------------------------------------------


def test_member_ticks_a_task_off_and_reopens_it(member_api, member, analysed):
    task = Task.objects.get(title=LEGAL)

    response = member_api.patch(task_url(task), {"done": True}, format="json")

    assert response.status_code == 200
    assert response.json()["done"] is True and response.json()["done_by"] == member.identity
    task.refresh_from_db()
    assert task.done and task.done_by == member and task.done_at is not None

    response = member_api.patch(task_url(task), {"done": False}, format="json")
    task.refresh_from_db()
    assert response.status_code == 200
    assert (task.done, task.done_by, task.done_at) == (False, None, None)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"done": "perhaps"}', "application/json"),
        ("{}", "application/json"),
        ('{"done": ', "application/json"),
        ("[true]", "application/json"),
    ],
)
def test_malformed_patch_is_400(member_api, analysed, body, content_type):
    task = Task.objects.get(title=LEGAL)
    response = member_api.generic("PATCH", task_url(task), body, content_type=content_type)
    assert response.status_code == 400
    task.refresh_from_db()
    assert not task.done


def test_outsider_gets_404_for_a_task(outsider_api, analysed):
    task = Task.objects.get(title=LEGAL)
    response = outsider_api.patch(task_url(task), {"done": True}, format="json")
    assert response.status_code == 404
    task.refresh_from_db()
    assert not task.done


def test_anonymous_cannot_tick_a_task(analysed):
    task = Task.objects.get(title=LEGAL)
    assert APIClient().patch(task_url(task), {"done": True}, format="json").status_code in (
        401,
        403,
    )
    task.refresh_from_db()
    assert not task.done


# --- Pages: analysis card, space page, tick-off form --------------------------------------------


def test_analysis_card_shows_summary_items_and_stats(member_client, analysed):
    response = member_client.get(reverse("sessions:analysis-partial", args=[analysed.slug]))
    html = response.content.decode()

    assert response.status_code == 200
    assert 'id="analysis"' in html and 'data-status="DONE"' in html
    assert "finish the legal review" in html and "by Friday" in html
    assert f'href="/sessions/{analysed.slug}/?t=22"' in html
    assert "Talk time" in html and "Olivia Owner" in html
    # Only the host or a space owner sees the re-run button; scripts come from static files.
    assert "Re-run analysis" not in html and "data-rerun-url" not in html
    assert "<script>" not in html and "js/analysis.js" in html


def test_host_sees_the_rerun_button_and_pending_card_polls(owner_client, analysed):
    analysis_request(session=analysed)
    html = owner_client.get(reverse("sessions:analysis-partial", args=[analysed.slug])).content
    html = html.decode()
    assert "Re-run analysis" in html and 'data-status="PENDING"' in html
    assert f'data-rerun-url="/api/sessions/{analysed.slug}/analysis/rerun"' in html
    assert f'data-status-url="/api/sessions/{analysed.slug}/analysis"' in html


def test_failed_analysis_card_says_why(member_client, analysed):
    SessionAnalysis.objects.filter(session=analysed).update(
        status=S.FAILED, error="RuntimeError: provider outage"
    )
    html = member_client.get(reverse("sessions:analysis-partial", args=[analysed.slug]))
    html = html.content.decode()
    assert 'data-status="FAILED"' in html
    assert "The analysis failed: RuntimeError: provider outage" in html
    assert "finish the legal review" not in html


def test_outsider_gets_404_for_the_analysis_card(outsider_client, analysed):
    url = reverse("sessions:analysis-partial", args=[analysed.slug])
    assert outsider_client.get(url).status_code == 404


def test_space_page_lists_open_tasks_with_a_tick_off_form(member_client, analysed):
    html = member_client.get(reverse("spaces:detail", args=[analysed.space.slug])).content
    html = html.decode()
    task = Task.objects.get(title=LEGAL)
    assert LEGAL in html
    assert reverse("sessions:task-done", args=[task.pk]) in html
    assert "Max Member" in html and "by Friday" in html


def test_member_ticks_off_a_task_with_the_form(member_client, member, analysed):
    task = Task.objects.get(title=LEGAL)
    response = member_client.post(reverse("sessions:task-done", args=[task.pk]), {"done": "1"})

    assert response.status_code == 302
    assert response.url == reverse("spaces:detail", args=[analysed.space.slug])
    task.refresh_from_db()
    assert task.done and task.done_by == member
    page = member_client.get(response.url).content.decode()
    assert "Recently done" in page


def test_tick_off_form_ignores_an_offsite_next(member_client, analysed):
    task = Task.objects.get(title=LEGAL)
    response = member_client.post(
        reverse("sessions:task-done", args=[task.pk]),
        {"done": "1", "next": "https://evil.example/"},
    )
    assert response.url == reverse("spaces:detail", args=[analysed.space.slug])


def test_outsider_gets_404_for_the_tick_off_form(outsider_client, analysed):
    task = Task.objects.get(title=LEGAL)
    response = outsider_client.post(reverse("sessions:task-done", args=[task.pk]), {"done": "1"})
    assert response.status_code == 404
    task.refresh_from_db()
    assert not task.done


def test_anonymous_is_sent_to_login_by_the_tick_off_form(analysed):
    task = Task.objects.get(title=LEGAL)
    response = Client().post(reverse("sessions:task-done", args=[task.pk]), {"done": "1"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    task.refresh_from_db()
    assert not task.done


def test_tick_off_form_needs_post(member_client, analysed):
    task = Task.objects.get(title=LEGAL)
    assert member_client.get(reverse("sessions:task-done", args=[task.pk])).status_code == 405
