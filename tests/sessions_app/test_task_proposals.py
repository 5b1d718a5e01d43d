"""Proposed tasks (services): the analysis proposes, a member accepts (with edits) or dismisses,
a re-run respects their decisions, low-confidence speech is marked, transcript edits make the
analysis stale."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from rooms.errors import Conflict, DomainError
from sessions_app.analysis.services import (
    analysis_claim,
    analysis_mark_stale,
    analysis_request,
    task_accept,
    task_dismiss,
    task_set_done,
)
from sessions_app.models import SessionAnalysis, Task, VideoSession
from sessions_app.selectors import task_list_for_space
from sessions_app.services import session_end
from tests.sessions_app.analysis_support import (
    CHECKLIST,
    LAUNCH_DATE,
    LEGAL,
    MEETING_LINES,
    store_lines,
)
from transcription.models import TranscriptSegment

TS = Task.Status
# MEETING_LINES indexes of the lines the three action items are said in.
LEGAL_LINE, CHECKLIST_LINE, LAUNCH_LINE = 3, 4, 5


@pytest.fixture(autouse=True)
def _offline(settings):
    settings.ANALYSIS_RUNNER = "celery"
    settings.ANALYSIS_PROVIDER = "offline"
    settings.TRANSCRIPT_LOW_CONFIDENCE = 0.6


def _end(session: VideoSession, owner, capture) -> None:
    with capture(execute=True):
        session_end(session=session, by=owner)


def _rerun(session: VideoSession, capture) -> None:
    with capture(execute=True):
        analysis_request(session=session)


@pytest.fixture
def proposed(video_session, owner, django_capture_on_commit_callbacks) -> VideoSession:
    store_lines(video_session, MEETING_LINES)
    _end(video_session, owner, django_capture_on_commit_callbacks)
    return video_session


def _task(title: str) -> Task:
    return Task.objects.get(title=title)


# --- proposing ----------------------------------------------------------------------------------


def test_the_analysis_proposes_and_the_space_has_no_task_until_someone_accepts(proposed, space):
    assert Task.objects.filter(session=proposed).count() == 3
    assert set(Task.objects.values_list("status", flat=True)) == {TS.PROPOSED}
    assert list(task_list_for_space(space=space)) == []
    assert list(task_list_for_space(space=space, done=False)) == []
    listed = task_list_for_space(space=space, status=TS.PROPOSED)
    assert [t.title for t in listed] == [LEGAL, CHECKLIST, LAUNCH_DATE]


# --- accepting and dismissing -------------------------------------------------------------------


def test_accepting_as_proposed_makes_it_a_task_of_the_space(proposed, space, owner, member):
    task = task_accept(task=_task(LEGAL), by=owner)

    assert task.status == TS.ACCEPTED
    assert (task.accepted_by, task.title, task.assignee, task.due_phrase) == (
        owner,
        LEGAL,
        member,
        "by Friday",
    )
    assert timezone.now() - task.accepted_at < timedelta(seconds=10)
    assert [t.pk for t in task_list_for_space(space=space)] == [task.pk]


def test_accepting_with_edits_changes_title_owner_and_due(proposed, owner, member):
    task = task_accept(
        task=_task(LAUNCH_DATE),
        by=member,
        title="  Confirm the   launch date with marketing ",
        assignee=owner,
        due_phrase="next Tuesday",
        due_date=date(2026, 12, 15),
    )

    task.refresh_from_db()
    assert task.title == "Confirm the launch date with marketing"
    assert task.proposed_title == LAUNCH_DATE
    assert (task.assignee, task.owner_name) == (owner, "Olivia Owner")
    assert (task.due_phrase, task.due_date) == ("next Tuesday", date(2026, 12, 15))
    assert task.accepted_by == member


def test_accepting_for_nobody_drops_the_owner_said(proposed, member):
    task = task_accept(task=_task(LEGAL), by=member, assignee=None, due_phrase="")

    assert (task.assignee, task.owner_name, task.due_phrase) == (None, "", "")


def test_a_task_cannot_be_given_to_someone_outside_the_space(proposed, member, outsider):
    with pytest.raises(DomainError) as refused:
        task_accept(task=_task(LEGAL), by=member, assignee=outsider)

    assert refused.value.code == "assignee_not_member" and refused.value.status == 400
    assert _task(LEGAL).status == TS.PROPOSED


def test_a_blank_title_is_refused(proposed, member):
    with pytest.raises(DomainError) as refused:
        task_accept(task=_task(LEGAL), by=member, title="   ")
    assert refused.value.code == "title_blank"
    assert _task(LEGAL).status == TS.PROPOSED


def test_dismissing_keeps_the_row_out_of_the_tasks(proposed, space, member):
    task = task_dismiss(task=_task(CHECKLIST), by=member)

    assert (task.status, task.dismissed_by) == (TS.DISMISSED, member)
    assert task.dismissed_at is not None
    assert list(task_list_for_space(space=space)) == []
    assert [t.pk for t in task_list_for_space(space=space, status=TS.DISMISSED)] == [task.pk]


@pytest.mark.parametrize("first", ["accept", "dismiss"])
@pytest.mark.parametrize("second", ["accept", "dismiss"])
def test_a_decided_proposal_cannot_be_decided_again(proposed, owner, member, first, second):
    decide = {"accept": task_accept, "dismiss": task_dismiss}
    stale_copy = _task(LEGAL)
    decide[first](task=_task(LEGAL), by=owner)

    with pytest.raises(Conflict) as refused:
        decide[second](task=stale_copy, by=member)

    assert refused.value.code == "task_not_proposed"
    task = _task(LEGAL)
    assert task.status == (TS.ACCEPTED if first == "accept" else TS.DISMISSED)
    assert (task.accepted_by or task.dismissed_by) == owner


def test_only_an_accepted_task_can_be_done(proposed, member):
    with pytest.raises(Conflict) as refused:
        task_set_done(task=_task(LEGAL), by=member, done=True)
    assert refused.value.code == "task_not_accepted"

    # The database says so too.
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.filter(title=LEGAL).update(done=True)

    task = task_set_done(task=task_accept(task=_task(LEGAL), by=member), by=member, done=True)
    assert task.done


# --- re-running ---------------------------------------------------------------------------------


def test_rerun_keeps_peoples_decisions_and_does_not_propose_a_dismissed_item_again(
    proposed, owner, member, django_capture_on_commit_callbacks
):
    accepted = task_accept(task=_task(LEGAL), by=member, title="Legal review (Max)")
    dismissed = task_dismiss(task=_task(CHECKLIST), by=member)
    proposal = _task(LAUNCH_DATE)

    _rerun(proposed, django_capture_on_commit_callbacks)

    tasks = {t.pk: t for t in Task.objects.filter(session=proposed)}
    assert set(tasks) == {accepted.pk, dismissed.pk, proposal.pk}
    assert (tasks[accepted.pk].status, tasks[accepted.pk].title) == (
        TS.ACCEPTED,
        "Legal review (Max)",
    )
    assert tasks[accepted.pk].accepted_by == member
    assert tasks[dismissed.pk].status == TS.DISMISSED
    assert tasks[proposal.pk].status == TS.PROPOSED


def test_a_dismissed_item_said_differently_cased_is_still_not_proposed(
    proposed, owner, member, django_capture_on_commit_callbacks
):
    task_dismiss(task=_task(CHECKLIST), by=member)
    segment = TranscriptSegment.objects.get(session=proposed, start_offset=30.5)
    segment.text = "Sure! I'LL ALSO UPDATE THE LAUNCH CHECKLIST, TOMORROW."
    segment.save()

    _rerun(proposed, django_capture_on_commit_callbacks)

    assert not Task.objects.filter(session=proposed, status=TS.PROPOSED, title__icontains="check")


def test_rerun_drops_proposals_it_no_longer_makes_but_keeps_accepted_tasks(
    proposed, member, django_capture_on_commit_callbacks
):
    accepted = task_accept(task=_task(LEGAL), by=member)
    # The transcript is corrected: neither the legal review nor the launch date is said now.
    TranscriptSegment.objects.filter(session=proposed, start_offset__in=[22.5, 36.5]).update(
        text="Thanks everyone."
    )

    _rerun(proposed, django_capture_on_commit_callbacks)

    remaining = dict(Task.objects.filter(session=proposed).values_list("title", "status"))
    assert remaining == {LEGAL: TS.ACCEPTED, CHECKLIST: TS.PROPOSED}
    assert Task.objects.get(pk=accepted.pk).accepted_by == member


def test_a_task_accepted_before_proposals_existed_is_not_proposed_again(
    proposed, member, django_capture_on_commit_callbacks
):
    # A task made by the old analysis (migrated: ACCEPTED, proposed title = its title), renamed.
    Task.objects.filter(title=LEGAL).update(status=TS.ACCEPTED, title="Renamed by hand")

    _rerun(proposed, django_capture_on_commit_callbacks)

    assert Task.objects.filter(session=proposed).count() == 3
    assert not Task.objects.filter(title=LEGAL).exists()


# --- low confidence -----------------------------------------------------------------------------


UNSURE_WORDS = [
    {"text": "Max,", "start": 22.5, "end": 23.0, "confidence": 0.9},
    {"text": "can", "start": 23.0, "end": 23.4, "confidence": 0.2},
    {"text": "you", "start": 23.4, "end": 23.8, "confidence": 0.2},
    {"text": "finish", "start": 23.8, "end": 24.3, "confidence": 0.2},
]


@pytest.mark.parametrize(
    ("confidence", "words", "low"),
    [
        ({LEGAL_LINE: 0.41}, {}, True),
        ({LEGAL_LINE: 0.93}, {}, False),
        # The threshold itself is not "below".
        ({LEGAL_LINE: 0.6}, {}, False),
        # The engine gave no confidence: nothing says the speech was unclear.
        ({}, {}, False),
        # No segment confidence: the mean of its words' (0.375).
        ({}, {LEGAL_LINE: UNSURE_WORDS}, True),
        # Another line's uncertainty is not this item's.
        ({LEGAL_LINE - 1: 0.1}, {}, False),
    ],
)
def test_items_from_low_confidence_speech_are_marked(
    video_session, owner, django_capture_on_commit_callbacks, confidence, words, low
):
    store_lines(video_session, MEETING_LINES, confidence=confidence, words=words)
    _end(video_session, owner, django_capture_on_commit_callbacks)

    assert _task(LEGAL).low_confidence is low
    assert _task(LAUNCH_DATE).low_confidence is False
    items = {i["text"]: i for i in SessionAnalysis.objects.get().action_items}
    assert items[LEGAL]["low_confidence"] is low


def test_the_low_confidence_threshold_is_a_setting(
    video_session, owner, settings, django_capture_on_commit_callbacks
):
    settings.TRANSCRIPT_LOW_CONFIDENCE = 0.3
    store_lines(video_session, MEETING_LINES, confidence={LEGAL_LINE: 0.41, CHECKLIST_LINE: 0.2})
    _end(video_session, owner, django_capture_on_commit_callbacks)

    assert (_task(LEGAL).low_confidence, _task(CHECKLIST).low_confidence) == (False, True)


# --- stale after a transcript edit --------------------------------------------------------------


def test_an_edit_after_the_analysis_makes_it_stale_and_a_rerun_clears_it(
    proposed, django_capture_on_commit_callbacks
):
    assert not SessionAnalysis.objects.get(session=proposed).is_stale

    assert analysis_mark_stale(session=proposed) is True

    analysis = SessionAnalysis.objects.get(session=proposed)
    assert analysis.is_stale and analysis.transcript_edited_at > analysis.started_at
    _rerun(proposed, django_capture_on_commit_callbacks)
    analysis = SessionAnalysis.objects.get(session=proposed)
    assert analysis.status == SessionAnalysis.Status.DONE
    assert not analysis.is_stale and analysis.transcript_edited_at is None


def test_an_edit_before_the_analysis_started_is_part_of_what_it_read(proposed):
    analysis_request(session=proposed)
    analysis_mark_stale(session=proposed)

    analysis_claim(session_id=proposed.pk)

    assert not SessionAnalysis.objects.get(session=proposed).is_stale


def test_an_edit_while_the_analysis_runs_makes_it_stale(proposed):
    analysis_request(session=proposed)
    analysis_claim(session_id=proposed.pk)

    analysis_mark_stale(session=proposed)

    assert SessionAnalysis.objects.get(session=proposed).is_stale


def test_marking_a_session_without_analysis_does_nothing(video_session):
    assert analysis_mark_stale(session=video_session) is False
    assert not SessionAnalysis.objects.exists()
