"""The analysis task: started by ending a session, runs once, retries, idempotent."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import close_old_connections
from django.utils import timezone

from sessions_app.analysis.services import (
    analysis_claim,
    analysis_request,
    task_accept,
    task_set_done,
)
from sessions_app.models import SessionAnalysis, Task, VideoSession
from sessions_app.services import session_end
from sessions_app.tasks import analyse_session
from tests.factories import VideoSessionFactory
from tests.sessions_app.analysis_support import FLAKY, MEETING_LINES, Flaky, store_lines
from tests.sessions_app.synthetic_meeting import PLANTED, TOPICS, meeting
from transcription.models import TranscriptionRun

S = SessionAnalysis.Status


@pytest.fixture(autouse=True)
def _celery_runner(settings):
    settings.ANALYSIS_RUNNER = "celery"
    settings.ANALYSIS_PROVIDER = "offline"
    settings.ANALYSIS_RETRY_BACKOFF_SECONDS = 0
    settings.ANALYSIS_MAX_RETRIES = 2
    Flaky.calls, Flaky.failures = 0, 0


@pytest.fixture
def with_transcript(video_session):
    store_lines(video_session, MEETING_LINES)
    return video_session


def test_ending_a_session_leads_to_a_done_analysis_and_tasks_proposed_to_the_space(
    with_transcript, owner, member, space, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=with_transcript, by=owner)

    analysis = SessionAnalysis.objects.get(session=with_transcript)
    assert analysis.status == S.DONE
    assert analysis.provider == "offline"
    assert analysis.attempts == 1
    assert analysis.finished_at is not None
    assert "launch checklist" in analysis.topics
    assert analysis.summary
    assert {s["name"] for s in analysis.speaker_stats} == {"Olivia Owner", "Max Member"}

    tasks = {t.title: t for t in Task.objects.filter(space=space)}
    legal = tasks["Max, can you finish the legal review by Friday?"]
    assert (legal.assignee, legal.owner_name, legal.due_phrase) == (
        member,
        "Max Member",
        "by Friday",
    )
    assert legal.start_seconds == 22.5 and legal.session == with_transcript
    assert legal.analysis == analysis and not legal.done
    # Proposed only: a member decides whether each becomes a task of the space.
    assert {t.status for t in tasks.values()} == {Task.Status.PROPOSED}
    assert legal.proposed_title == legal.title and legal.accepted_by is None
    checklist = tasks["I'll also update the launch checklist tomorrow."]
    assert (checklist.assignee, checklist.due_phrase) == (member, "tomorrow")
    launch_date = tasks["We need to confirm the launch date next week."]
    assert launch_date.assignee is None and launch_date.owner_name == ""
    assert len(tasks) == 3


def test_two_hour_meeting_ends_with_its_planted_topics_and_tasks(
    video_session, owner, space, django_capture_on_commit_callbacks
):
    store_lines(video_session, meeting(minutes=120))

    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=video_session, by=owner)

    analysis = SessionAnalysis.objects.get(session=video_session)
    assert analysis.status == S.DONE
    assert set(TOPICS) <= set(analysis.topics)
    tasks = {t.title: t for t in Task.objects.filter(space=space)}
    assert {p.text: (p.owner or "", p.due) for p in PLANTED} == {
        title: (t.owner_name, t.due_phrase) for title, t in tasks.items()
    }
    # The speakers are not members of the space: nobody is assigned by guesswork.
    assert all(t.assignee is None for t in tasks.values())


def test_a_second_end_does_not_request_the_analysis_again(
    with_transcript, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=with_transcript, by=owner)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        session_end(session=with_transcript, by=owner)
    assert callbacks == []
    assert SessionAnalysis.objects.get(session=with_transcript).attempts == 1


def test_task_queued_twice_runs_once(with_transcript, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        analysis_request(session=with_transcript)

    first = analyse_session.delay(with_transcript.pk)
    second = analyse_session.delay(with_transcript.pk)

    assert (first.result, second.result) == ("done", "skipped")
    analysis = SessionAnalysis.objects.get(session=with_transcript)
    assert analysis.status == S.DONE and analysis.attempts == 1
    assert Task.objects.filter(session=with_transcript).count() == 3


def test_task_arriving_while_another_runs_leaves_it_alone(with_transcript):
    analysis_request(session=with_transcript)
    claimed = analysis_claim(session_id=with_transcript.pk)
    assert claimed is not None and claimed.status == S.RUNNING

    assert analyse_session.delay(with_transcript.pk).result == "skipped"
    assert SessionAnalysis.objects.get(pk=claimed.pk).status == S.RUNNING
    assert not Task.objects.filter(session=with_transcript).exists()


def test_stale_running_analysis_is_claimed_again(with_transcript, settings):
    analysis_request(session=with_transcript)
    analysis_claim(session_id=with_transcript.pk)
    SessionAnalysis.objects.filter(session=with_transcript).update(
        started_at=timezone.now() - timedelta(seconds=settings.ANALYSIS_STALE_SECONDS + 5)
    )

    assert analyse_session.delay(with_transcript.pk).result == "done"
    analysis = SessionAnalysis.objects.get(session=with_transcript)
    assert (analysis.status, analysis.attempts) == (S.DONE, 2)


def test_failed_attempts_are_retried_then_done(with_transcript, settings):
    settings.ANALYSIS_PROVIDER = FLAKY
    Flaky.failures = 2
    analysis_request(session=with_transcript)

    analyse_session.delay(with_transcript.pk)

    analysis = SessionAnalysis.objects.get(session=with_transcript)
    assert (analysis.status, analysis.attempts, Flaky.calls) == (S.DONE, 3, 3)
    assert analysis.error == ""
    assert Task.objects.filter(session=with_transcript).count() == 3


def test_retries_exhausted_marks_the_analysis_failed_with_the_error(with_transcript, settings):
    settings.ANALYSIS_PROVIDER = FLAKY
    Flaky.failures = 100
    analysis_request(session=with_transcript)

    analyse_session.delay(with_transcript.pk)

    analysis = SessionAnalysis.objects.get(session=with_transcript)
    assert analysis.status == S.FAILED
    assert analysis.attempts == settings.ANALYSIS_MAX_RETRIES + 1 == Flaky.calls
    assert analysis.error == "RuntimeError: provider outage (call 3)"
    assert analysis.finished_at is not None
    assert not Task.objects.filter(session=with_transcript).exists()


def test_rerun_replaces_the_analysis_without_duplicating_tasks(
    with_transcript, owner, member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=with_transcript, by=owner)
    done = task_accept(task=Task.objects.get(title__startswith="Max, can you"), by=member)
    task_set_done(task=done, by=member, done=True)
    proposals = set(
        Task.objects.filter(session=with_transcript, status="PROPOSED").values_list("pk", flat=True)
    )

    with django_capture_on_commit_callbacks(execute=True):
        analysis_request(session=with_transcript)

    analysis = SessionAnalysis.objects.get(session=with_transcript)
    assert analysis.status == S.DONE and analysis.attempts == 1
    assert Task.objects.filter(session=with_transcript).count() == 3
    done.refresh_from_db()
    assert done.done and done.done_by == member and done.analysis == analysis
    assert done.status == Task.Status.ACCEPTED
    # The two proposals are the same rows, refreshed, not new ones.
    assert proposals == set(
        Task.objects.filter(session=with_transcript, status="PROPOSED").values_list("pk", flat=True)
    )


def test_analysis_waits_boundedly_for_a_live_run_to_flush(with_transcript, settings):
    settings.ANALYSIS_SETTLE_SECONDS = 0.6
    TranscriptionRun.objects.create(
        session=with_transcript,
        mode=TranscriptionRun.Mode.BROWSER,
        provider="local",
        status=TranscriptionRun.Status.STOPPING,
        heartbeat_at=timezone.now(),
    )
    analysis_request(session=with_transcript)

    began = time.monotonic()
    analyse_session.delay(with_transcript.pk)
    waited = time.monotonic() - began

    assert 0.6 <= waited < 5
    assert SessionAnalysis.objects.get(session=with_transcript).status == S.DONE


def test_a_run_without_a_live_runner_is_not_waited_for(with_transcript, settings):
    settings.ANALYSIS_SETTLE_SECONDS = 5
    TranscriptionRun.objects.create(
        session=with_transcript,
        mode=TranscriptionRun.Mode.BROWSER,
        provider="local",
        status=TranscriptionRun.Status.STOPPING,
        heartbeat_at=timezone.now() - timedelta(minutes=5),
    )
    analysis_request(session=with_transcript)

    began = time.monotonic()
    analyse_session.delay(with_transcript.pk)
    assert time.monotonic() - began < 4


def test_eager_analysis_inside_the_ending_call_does_not_wait_for_runs(
    with_transcript, owner, settings, django_capture_on_commit_callbacks
):
    settings.ANALYSIS_SETTLE_SECONDS = 5
    TranscriptionRun.objects.create(
        session=with_transcript,
        mode=TranscriptionRun.Mode.BROWSER,
        provider="local",
        status=TranscriptionRun.Status.ACTIVE,
        heartbeat_at=timezone.now(),
    )

    began = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=with_transcript, by=owner)

    assert time.monotonic() - began < 4
    assert SessionAnalysis.objects.get(session=with_transcript).status == S.DONE


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_ending_returns_at_once_and_a_thread_analyses(settings, owner, space):
    settings.ANALYSIS_RUNNER = "thread"
    settings.ANALYSIS_SETTLE_SECONDS = 0
    session = VideoSessionFactory(space=space, created_by=owner, title="Embedded")
    store_lines(session, MEETING_LINES)

    session_end(session=session, by=owner)

    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        status = SessionAnalysis.objects.filter(session=session).values_list("status", flat=True)[0]
        if status in (S.DONE, S.FAILED):
            break
        time.sleep(0.1)
    close_old_connections()
    assert status == S.DONE
    assert Task.objects.filter(session=session).count() == 3
    assert VideoSession.objects.get(pk=session.pk).status == VideoSession.Status.ENDED


def test_admin_shows_the_analysis_and_reruns_it(
    with_transcript, owner, django_capture_on_commit_callbacks, client
):
    from tests.factories import UserFactory

    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=with_transcript, by=owner)
    analysis = SessionAnalysis.objects.get(session=with_transcript)
    first_finished = analysis.finished_at
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)

    page = client.get(f"/admin/sessions_app/sessionanalysis/{analysis.pk}/change/")
    assert page.status_code == 200
    assert "The launch checklist is almost complete." in page.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/sessions_app/sessionanalysis/",
            {"action": "rerun", "_selected_action": [analysis.pk]},
        )
    assert response.status_code == 302
    analysis.refresh_from_db()
    assert analysis.status == S.DONE and analysis.attempts == 1
    assert analysis.finished_at > first_finished
    assert Task.objects.filter(session=with_transcript).count() == 3
    tasks_page = client.get("/admin/sessions_app/task/")
    assert "finish the legal review" in tasks_page.content.decode()
