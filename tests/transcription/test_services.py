"""Transcription writes: runs, their status transitions, stored finals and the usage meter."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from rooms.errors import Conflict
from sessions_app.models import VideoSession
from tests.factories import VideoSessionFactory
from transcription import services
from transcription.live import broadcast, store, transitions
from transcription.live.store import FinalSegment
from transcription.models import TranscriptionRun, TranscriptionUsage, TranscriptSegment
from transcription.usage import metering
from transcription.usage.metering import UsageCounters

S = TranscriptionRun.Status


@pytest.fixture(autouse=True)
def _no_runner(settings):
    # Runs here are rows only: no pipeline may be launched behind the test's back.
    settings.TRANSCRIPTION_RUNNER = "embedded"
    settings.STT_PROVIDER = "local"
    settings.TRANSCRIPTION_COST_PER_MINUTE = Decimal("0.01")


def _run(session: VideoSession, status: str = S.STARTING, **fields) -> TranscriptionRun:
    run = TranscriptionRun.objects.create(
        session=session, mode="BROWSER", provider="local", status=status, **fields
    )
    TranscriptionUsage.objects.create(
        session=session, run=run, provider="local", cost_per_minute=Decimal("0.01")
    )
    return run


def _final(
    run: TranscriptionRun, utterance_id: str, text: str, start: float = 1.0, **fields
) -> FinalSegment:
    values = {
        "session_id": run.session_id,
        "run_id": run.pk,
        "utterance_id": utterance_id,
        "text": text,
        "language": "en",
        "start_offset": start,
        "end_offset": start + 1.5,
        "speaker_identity": None,
        "speaker_name": None,
    }
    values.update(fields)
    return FinalSegment(**values)


# --- segments_upsert ------------------------------------------------------------------------


def test_final_received_twice_in_separate_calls_is_stored_once_with_the_latest_text(
    video_session,
):
    run = _run(video_session, S.ACTIVE)
    store.segments_upsert(finals=[_final(run, "u-1", "it was the")])
    store.segments_upsert(
        finals=[_final(run, "u-1", "it was the best of times", start=1.2)],
    )

    segment = TranscriptSegment.objects.get(session=video_session)
    assert segment.utterance_id == "u-1"
    assert segment.text == "it was the best of times"
    assert segment.start_offset == 1.2


def test_final_received_twice_in_one_batch_is_stored_once_with_the_latest_text(video_session):
    run = _run(video_session, S.ACTIVE)
    store.segments_upsert(
        finals=[
            _final(run, "u-1", "it was the"),
            _final(run, "u-2", "worst of times", start=3.0),
            _final(run, "u-1", "it was the best of times"),
        ],
    )

    stored = {
        s.utterance_id: s.text for s in TranscriptSegment.objects.filter(session=video_session)
    }
    assert stored == {"u-1": "it was the best of times", "u-2": "worst of times"}


def test_upsert_links_the_speaker_to_the_sessions_participant(video_session, owner):
    from sessions_app.services import session_join

    participant = session_join(session=video_session, user=owner).participant
    run = _run(video_session, S.ACTIVE)
    store.segments_upsert(
        finals=[
            _final(run, "u-1", "hello", speaker_identity=owner.identity, speaker_name=owner.name),
            _final(run, "u-2", "who said this", speaker_identity="u-nobody", speaker_name="Ghost"),
        ],
    )

    by_id = {s.utterance_id: s for s in TranscriptSegment.objects.filter(session=video_session)}
    assert by_id["u-1"].participant_id == participant.pk
    assert by_id["u-1"].speaker_name == owner.name
    assert by_id["u-2"].participant_id is None
    assert by_id["u-2"].speaker_identity == "u-nobody"


def test_two_sessions_can_use_the_same_utterance_id(video_session, space, owner):
    other = VideoSessionFactory(space=space, created_by=owner)
    run, other_run = _run(video_session), _run(other)
    store.segments_upsert(finals=[_final(run, "same", "in the first")])
    store.segments_upsert(finals=[_final(other_run, "same", "in the second")])

    assert TranscriptSegment.objects.get(session=video_session).text == "in the first"
    assert TranscriptSegment.objects.get(session=other).text == "in the second"


def test_one_batch_can_carry_the_same_utterance_id_for_two_sessions(video_session, space, owner):
    from sessions_app.services import session_join

    other = VideoSessionFactory(space=space, created_by=owner)
    here = session_join(session=video_session, user=owner).participant
    there = session_join(session=other, user=owner).participant
    run, other_run = _run(video_session), _run(other)
    speaker = {"speaker_identity": owner.identity, "speaker_name": owner.name}

    store.segments_upsert(
        finals=[
            _final(run, "same", "in the first", **speaker),
            _final(other_run, "same", "in the second", **speaker),
        ]
    )

    first = TranscriptSegment.objects.get(session=video_session)
    second = TranscriptSegment.objects.get(session=other)
    assert (first.text, first.run_id, first.participant_id) == ("in the first", run.pk, here.pk)
    assert (second.text, second.run_id, second.participant_id) == (
        "in the second",
        other_run.pk,
        there.pk,
    )


def test_upsert_of_nothing_writes_nothing(video_session):
    assert store.segments_upsert(finals=[]) == 0
    assert not TranscriptSegment.objects.exists()


def test_the_database_refuses_a_second_segment_with_the_same_utterance_id(video_session):
    run = _run(video_session)
    TranscriptSegment.objects.create(
        session=video_session, run=run, utterance_id="u", text="a", start_offset=0, end_offset=1
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        TranscriptSegment.objects.create(
            session=video_session, run=run, utterance_id="u", text="b", start_offset=0, end_offset=1
        )


# --- the one-unfinished-run constraint ------------------------------------------------------


@pytest.mark.parametrize("second", [S.STARTING, S.ACTIVE, S.STOPPING])
def test_the_database_allows_only_one_unfinished_run_per_session(video_session, second):
    _run(video_session, S.ACTIVE)
    with pytest.raises(IntegrityError), transaction.atomic():
        TranscriptionRun.objects.create(
            session=video_session, mode="BROWSER", provider="local", status=second
        )
    assert TranscriptionRun.objects.filter(session=video_session).count() == 1


def test_finished_runs_do_not_count_against_the_one_unfinished_run(video_session):
    _run(video_session, S.STOPPED)
    _run(video_session, S.FAILED)
    _run(video_session, S.STOPPED)
    _run(video_session, S.STARTING)

    assert TranscriptionRun.objects.filter(session=video_session).count() == 4


def test_unfinished_runs_of_different_sessions_do_not_conflict(video_session, space, owner):
    _run(video_session, S.ACTIVE)
    _run(VideoSessionFactory(space=space, created_by=owner), S.STARTING)

    assert TranscriptionRun.objects.filter(status__in=TranscriptionRun.UNFINISHED).count() == 2


def test_moving_a_run_into_an_unfinished_status_is_refused_while_another_is_unfinished(
    video_session,
):
    _run(video_session, S.ACTIVE)
    stopped = _run(video_session, S.STOPPED)
    with pytest.raises(IntegrityError), transaction.atomic():
        TranscriptionRun.objects.filter(pk=stopped.pk).update(status=S.STARTING)


# --- transitions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "to", "moves"),
    [
        (S.STARTING, S.ACTIVE, True),
        (S.STARTING, S.STOPPING, True),
        (S.STARTING, S.STOPPED, True),
        (S.STARTING, S.FAILED, True),
        (S.ACTIVE, S.STOPPING, True),
        (S.ACTIVE, S.STOPPED, True),
        (S.ACTIVE, S.FAILED, True),
        (S.ACTIVE, S.STARTING, True),
        (S.STOPPING, S.STOPPED, True),
        (S.STOPPING, S.FAILED, True),
        (S.ACTIVE, S.ACTIVE, False),
        (S.STOPPING, S.ACTIVE, False),
        (S.STOPPING, S.STARTING, False),
        (S.STOPPED, S.ACTIVE, False),
        (S.STOPPED, S.STARTING, False),
        (S.STOPPED, S.STOPPING, False),
        (S.STOPPED, S.FAILED, False),
        (S.STOPPED, S.STOPPED, False),
        (S.FAILED, S.ACTIVE, False),
        (S.FAILED, S.STARTING, False),
        (S.FAILED, S.STOPPING, False),
        (S.FAILED, S.STOPPED, False),
        (S.FAILED, S.FAILED, False),
    ],
)
def test_transition_moves_only_along_allowed_edges(video_session, start, to, moves):
    run = _run(video_session, start, error="before")

    assert transitions.transition(run.pk, to, error="after") is moves

    run.refresh_from_db()
    assert run.status == (to if moves else start)
    assert run.error == ("after" if moves else "before"), "a refused move changes no field"


def test_a_finished_run_is_never_resurrected(video_session):
    run = _run(video_session, S.ACTIVE)
    assert transitions.transition(run.pk, S.FAILED, error_code="auth")
    for target in (S.STARTING, S.ACTIVE, S.STOPPING, S.STOPPED):
        assert not transitions.transition(run.pk, target)
    run.refresh_from_db()
    assert run.status == S.FAILED
    assert run.error_code == "auth"


@pytest.mark.parametrize("to", [S.STOPPED, S.FAILED])
def test_terminal_transition_stamps_ended_at(video_session, to):
    run = _run(video_session, S.ACTIVE)
    before = timezone.now()

    assert transitions.transition(run.pk, to)

    run.refresh_from_db()
    assert run.ended_at is not None
    assert before <= run.ended_at <= timezone.now()


@pytest.mark.parametrize("to", [S.ACTIVE, S.STOPPING])
def test_non_terminal_transition_leaves_ended_at_empty(video_session, to):
    run = _run(video_session, S.STARTING)
    assert transitions.transition(run.pk, to)
    run.refresh_from_db()
    assert run.ended_at is None


def test_transition_keeps_an_explicit_ended_at(video_session):
    run = _run(video_session, S.ACTIVE)
    when = timezone.now() - timedelta(minutes=5)
    assert transitions.transition(run.pk, S.STOPPED, ended_at=when)
    run.refresh_from_db()
    assert run.ended_at == when


def test_only_from_narrows_the_allowed_sources(video_session):
    run = _run(video_session, S.ACTIVE)
    assert not transitions.transition(run.pk, S.STOPPED, only_from=(S.STARTING,))
    run.refresh_from_db()
    assert run.status == S.ACTIVE


# --- run_start / run_stop -------------------------------------------------------------------


def test_run_start_creates_a_run_and_its_usage_meter(video_session, member, settings):
    settings.TRANSCRIPTION_COST_PER_MINUTE = Decimal("0.0125")
    settings.LIVEKIT_ENABLED = False
    settings.TRANSCRIPTION_MODE = "auto"

    run = services.run_start(session=video_session, by=member)

    assert run.status == S.STARTING
    assert run.mode == TranscriptionRun.Mode.BROWSER
    assert run.provider == "local"
    assert run.started_by == member
    usage = TranscriptionUsage.objects.get(run=run)
    assert usage.user == member
    assert usage.session == video_session
    assert usage.cost_per_minute == Decimal("0.0125")
    assert not usage.finalized


@pytest.fixture
def told(monkeypatch) -> list[str]:
    """What the session's pages are told after a commit, in order: each status broadcast (sent
    for real) as ``status <STATUS>``; tests add what else they watch."""
    done: list[str] = []
    send_status = broadcast.send_status_sync

    def status_sent(session_id, run):
        send_status(session_id, run)
        done.append(f"status {run.status}")

    monkeypatch.setattr(broadcast, "send_status_sync", status_sent)
    return done


def test_run_start_says_starting_before_it_queues_the_run(
    video_session, owner, monkeypatch, told, django_capture_on_commit_callbacks
):
    # The runner says ACTIVE on the session's group as soon as it has the run; a STARTING sent
    # after the launch could reach the pages after that ACTIVE and silence their microphones.
    monkeypatch.setattr(services, "launch", lambda run_id: told.append(f"launch {run_id}"))

    with django_capture_on_commit_callbacks(execute=True):
        run = services.run_start(session=video_session, by=owner)

    assert told == [f"status {S.STARTING}", f"launch {run.pk}"]


def test_run_start_returns_the_unfinished_run_instead_of_making_a_second(video_session, owner):
    existing = _run(video_session, S.ACTIVE)

    assert services.run_start(session=video_session, by=owner).pk == existing.pk
    assert TranscriptionRun.objects.filter(session=video_session).count() == 1


def test_run_start_after_a_finished_run_makes_a_new_one(video_session, owner):
    old = _run(video_session, S.STOPPED)

    run = services.run_start(session=video_session, by=owner)

    assert run.pk != old.pk
    assert run.status == S.STARTING


def test_run_start_on_an_ended_session_is_a_conflict(video_session, owner):
    VideoSession.objects.filter(pk=video_session.pk).update(status=VideoSession.Status.ENDED)
    video_session.refresh_from_db()

    with pytest.raises(Conflict) as excinfo:
        services.run_start(session=video_session, by=owner)

    assert excinfo.value.code == "session_ended"
    assert not TranscriptionRun.objects.exists()


def test_run_stop_of_a_starting_run_without_runner_stops_it_and_finalises_usage(video_session):
    run = _run(video_session, S.STARTING)
    TranscriptionUsage.objects.filter(run=run).update(duration_seconds=61.0)

    stopped = services.run_stop(run=run, reason="stopped by a participant")

    assert stopped.status == S.STOPPED
    assert stopped.ended_at is not None
    assert (stopped.error_code, stopped.error) == ("", ""), "a stop is not an error"
    usage = TranscriptionUsage.objects.get(run=run)
    assert usage.finalized
    assert usage.ended_at is not None
    assert usage.billed_minutes == 2
    assert usage.total_cost == Decimal("0.0200")


def test_run_stop_with_an_error_code_fails_a_starting_run_with_the_reason(video_session):
    run = _run(video_session, S.STARTING)

    failed = services.run_stop(run=run, reason="The recorder could not start", error_code="egress")

    assert failed.status == S.FAILED
    assert (failed.error_code, failed.error) == ("egress", "The recorder could not start")
    assert failed.ended_at is not None
    assert TranscriptionUsage.objects.get(run=run).finalized


def test_run_stop_with_an_error_code_keeps_the_reason_on_a_live_run(video_session):
    run = _run(video_session, S.ACTIVE, control_channel="transcription.run.inmemory!abc")

    stopping = services.run_stop(run=run, reason="The recorder stopped", error_code="egress")

    assert stopping.status == S.STOPPING
    assert (stopping.error_code, stopping.error) == ("egress", "The recorder stopped")


def test_run_stop_of_an_active_run_asks_its_runner_to_stop_after_commit(
    video_session, monkeypatch, django_capture_on_commit_callbacks
):
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        broadcast, "send_run_control_sync", lambda channel, message: sent.append((channel, message))
    )
    run = _run(video_session, S.ACTIVE, control_channel="transcription.run.inmemory!abc")

    with django_capture_on_commit_callbacks() as callbacks:
        stopping = services.run_stop(run=run)
        assert sent == [], "nobody is told before the commit"

    for callback in callbacks:
        callback()
    assert sent == [("transcription.run.inmemory!abc", {"type": "run.stop"})]
    assert stopping.status == S.STOPPING
    assert stopping.ended_at is None, "the runner finishes it after flushing"
    assert not TranscriptionUsage.objects.get(run=run).finalized


def test_run_stop_says_stopping_before_it_tells_the_runner(
    video_session, monkeypatch, told, django_capture_on_commit_callbacks
):
    # The runner says STOPPED as soon as it has flushed; a STOPPING sent after the runner was
    # told could reach the pages after that STOPPED and leave them showing a run that stops.
    monkeypatch.setattr(
        broadcast, "send_run_control_sync", lambda channel, message: told.append(message["type"])
    )
    run = _run(video_session, S.ACTIVE, control_channel="transcription.run.inmemory!abc")

    with django_capture_on_commit_callbacks(execute=True):
        services.run_stop(run=run)

    assert told == [f"status {S.STOPPING}", "run.stop"]


def test_run_stop_of_a_finished_run_changes_nothing(video_session):
    ended = timezone.now() - timedelta(hours=1)
    run = _run(video_session, S.FAILED, ended_at=ended, error_code="auth", error="bad key")

    result = services.run_stop(run=run, reason="again")

    assert result.status == S.FAILED
    assert result.ended_at == ended
    assert result.error == "bad key"


def test_runs_stop_for_session_stops_its_unfinished_runs_only(video_session, space, owner):
    finished_at = timezone.now() - timedelta(hours=1)
    old = _run(video_session, S.STOPPED, ended_at=finished_at)
    starting = _run(video_session, S.STARTING)
    other_session = VideoSessionFactory(space=space, created_by=owner)
    elsewhere = _run(other_session, S.ACTIVE, control_channel="transcription.run.x!y")

    services.runs_stop_for_session(session_id=video_session.pk)

    starting.refresh_from_db()
    assert starting.status == S.STOPPED
    assert starting.error == ""
    assert TranscriptionUsage.objects.get(run=starting).finalized
    old.refresh_from_db()
    assert old.ended_at == finished_at
    elsewhere.refresh_from_db()
    assert elsewhere.status == S.ACTIVE


def test_runs_stop_for_session_moves_a_live_run_to_stopping(video_session):
    run = _run(video_session, S.ACTIVE, control_channel="transcription.run.x!y")

    services.runs_stop_for_session(session_id=video_session.pk)

    run.refresh_from_db()
    assert run.status == S.STOPPING


# --- runner-side services -------------------------------------------------------------------


def test_run_attach_refuses_a_finished_run(video_session):
    run = _run(video_session, S.STOPPED)
    assert store.run_attach(run_id=run.pk, control_channel="c") is None
    run.refresh_from_db()
    assert run.control_channel == ""


def test_run_activate_claims_a_starting_run_once(video_session):
    run = _run(video_session, S.STARTING)
    now = timezone.now()

    assert store.run_activate(run_id=run.pk, control_channel="", started_at=now)
    assert not store.run_activate(run_id=run.pk, control_channel="", started_at=now)

    run.refresh_from_db()
    assert run.status == S.ACTIVE
    assert run.started_at == now
    assert TranscriptionUsage.objects.get(run=run).started_at == now


def test_run_activate_does_not_revive_a_run_stopped_before_its_runner_started(video_session):
    run = _run(video_session, S.STARTING)
    services.run_stop(run=run)

    assert not store.run_activate(run_id=run.pk, control_channel="", started_at=timezone.now())
    run.refresh_from_db()
    assert run.status == S.STOPPED


def test_run_finish_with_an_error_fails_the_run_and_closes_the_meter(video_session):
    run = _run(video_session, S.ACTIVE)

    finished = store.run_finish(
        run_id=run.pk, control_channel="", error_code="auth", error="Gladia said no"
    )

    assert finished.status == S.FAILED
    assert finished.error_code == "auth"
    assert finished.error == "Gladia said no"
    assert TranscriptionUsage.objects.get(run=run).finalized


def test_run_finish_without_an_error_stops_the_run(video_session):
    run = _run(video_session, S.STOPPING)
    assert store.run_finish(run_id=run.pk, control_channel="").status == S.STOPPED


def test_a_stalled_runner_replaced_by_the_supervisor_cannot_touch_its_successors_run(
    video_session, settings
):
    # Runner "a" claims the run, then stalls past the stale time (its process frozen, the
    # database away): the supervisor unclaims the run and runner "b" takes it over.
    settings.TRANSCRIPTION_STALE_SECONDS = 5
    run = _run(video_session, S.STARTING)
    assert store.run_attach(run_id=run.pk, control_channel="a") is not None
    assert store.run_activate(run_id=run.pk, control_channel="a", started_at=timezone.now())
    stale = timezone.now() - timedelta(seconds=60)
    TranscriptionRun.objects.filter(pk=run.pk).update(heartbeat_at=stale)
    assert services.runs_supervise()["restarted"] == [run.pk]
    assert store.run_attach(run_id=run.pk, control_channel="b") is not None
    assert store.run_activate(run_id=run.pk, control_channel="b", started_at=timezone.now())
    metering.usage_checkpoint(
        counters={run.pk: UsageCounters(audio_seconds=90.0)}, owners={run.pk: "b"}
    )

    # Runner "a" wakes up: its heartbeat says the run is not its own any more, and its meter,
    # hand-off and finish land nowhere.
    assert store.runs_heartbeat(owners={run.pk: "a"}) == {}
    metering.usage_checkpoint(
        counters={run.pk: UsageCounters(audio_seconds=20.0)}, owners={run.pk: "a"}
    )
    assert store.run_hand_off(run_id=run.pk, control_channel="a") is None
    assert (
        store.run_finish(run_id=run.pk, control_channel="a", error_code="provider").status
        == S.ACTIVE
    )

    run.refresh_from_db()
    usage = TranscriptionUsage.objects.get(run=run)
    assert (run.status, run.control_channel, run.error_code) == (S.ACTIVE, "b", "")
    assert (usage.duration_seconds, usage.finalized) == (90.0, False)
    # The successor's own writes still land.
    assert store.runs_heartbeat(owners={run.pk: "b"}) == {run.pk: S.ACTIVE}
    assert store.run_finish(run_id=run.pk, control_channel="b").status == S.STOPPED
    assert TranscriptionUsage.objects.get(run=run).finalized


# --- usage ----------------------------------------------------------------------------------


def test_usage_checkpoint_writes_every_held_meter_in_one_round_and_leaves_the_rest(
    db, django_assert_max_num_queries
):
    runs = [_run(VideoSessionFactory(), S.ACTIVE) for _ in range(3)]
    done, other, mine = runs
    TranscriptionUsage.objects.filter(run=done).update(finalized=True, duration_seconds=5.0)
    TranscriptionRun.objects.filter(pk=other.pk).update(control_channel="someone-else")
    TranscriptionRun.objects.filter(pk__in=[done.pk, mine.pk]).update(control_channel="me")
    before = TranscriptionUsage.objects.get(run=mine).updated_at
    counters = {run.pk: UsageCounters(audio_seconds=61.0, final_count=3) for run in runs}

    # One read of the meters, one UPDATE for all of them, however many runs.
    with django_assert_max_num_queries(2):
        metering.usage_checkpoint(counters=counters, owners={run.pk: "me" for run in runs})

    usage = {u.run_id: u for u in TranscriptionUsage.objects.filter(run__in=runs)}
    assert (usage[mine.pk].duration_seconds, usage[mine.pk].billed_minutes) == (61.0, 2)
    assert usage[mine.pk].final_count == 3 and usage[mine.pk].updated_at > before
    assert usage[done.pk].duration_seconds == 5.0, "a finalised meter is left alone"
    assert usage[other.pk].duration_seconds == 0.0, "a meter held by another runner too"


def test_usage_checkpoint_then_finalize_bills_whole_minutes_at_the_runs_rate(video_session):
    run = _run(video_session, S.ACTIVE)
    TranscriptionUsage.objects.filter(run=run).update(cost_per_minute=Decimal("0.0125"))
    counters = UsageCounters(
        audio_seconds=125.5,
        audio_chunks=6275,
        audio_bytes=4_016_000,
        partial_count=40,
        final_count=12,
        error_count=1,
        reconnect_count=2,
    )

    metering.usage_checkpoint(counters={run.pk: counters}, owners={run.pk: ""})

    usage = TranscriptionUsage.objects.get(run=run)
    assert usage.duration_seconds == 125.5
    assert usage.billed_minutes == 3
    assert usage.total_cost == Decimal("0.0375")
    assert (usage.audio_chunks, usage.audio_bytes) == (6275, 4_016_000)
    assert (usage.partial_count, usage.final_count) == (40, 12)
    assert (usage.error_count, usage.reconnect_count) == (1, 2)
    assert not usage.finalized

    final = metering.usage_finalize(run_id=run.pk)

    assert final.finalized
    assert final.ended_at is not None
    assert final.billed_minutes == 3
    assert final.total_cost == Decimal("0.0375")


def test_usage_checkpoint_is_ignored_once_the_meter_is_final(video_session):
    run = _run(video_session, S.ACTIVE)
    metering.usage_checkpoint(
        counters={run.pk: UsageCounters(audio_seconds=30.0)}, owners={run.pk: ""}
    )
    metering.usage_finalize(run_id=run.pk)

    metering.usage_checkpoint(
        counters={run.pk: UsageCounters(audio_seconds=3600.0)}, owners={run.pk: ""}
    )

    usage = TranscriptionUsage.objects.get(run=run)
    assert usage.duration_seconds == 30.0
    assert usage.billed_minutes == 1
    assert usage.total_cost == Decimal("0.0100")


def test_usage_finalize_is_idempotent(video_session):
    run = _run(video_session, S.ACTIVE)
    metering.usage_checkpoint(
        counters={run.pk: UsageCounters(audio_seconds=59.0)}, owners={run.pk: ""}
    )
    first = metering.usage_finalize(run_id=run.pk)

    second = metering.usage_finalize(run_id=run.pk)

    assert second.ended_at == first.ended_at
    assert second.billed_minutes == 1


def test_a_run_with_no_audio_bills_nothing(video_session):
    run = _run(video_session, S.STARTING)
    usage = metering.usage_finalize(run_id=run.pk)
    assert usage.billed_minutes == 0
    assert usage.total_cost == Decimal("0")


def test_usage_baseline_resumes_from_the_stored_meter(video_session):
    run = _run(video_session, S.ACTIVE)
    counters = UsageCounters(audio_seconds=12.5, audio_chunks=625, audio_bytes=400_000)
    counters.final_count = 3
    metering.usage_checkpoint(counters={run.pk: counters}, owners={run.pk: ""})

    assert metering.usage_baseline(run_id=run.pk) == counters


def test_run_attach_lets_exactly_one_runner_claim_a_run(video_session):
    run = TranscriptionRun.objects.create(session=video_session, mode="BROWSER", provider="local")

    assert store.run_attach(run_id=run.pk, control_channel="first") is not None
    # A second delivery of the same task finds the run claimed and leaves it alone.
    assert store.run_attach(run_id=run.pk, control_channel="second") is None
    run.refresh_from_db()
    assert run.control_channel == "first"


def test_participant_name_names_only_participants_of_that_session(video_session, owner, member):
    from sessions_app.services import participant_upsert

    participant_upsert(session=video_session, user=owner)
    other = VideoSessionFactory(space=video_session.space, created_by=owner)

    assert (
        store.participant_name(session_id=video_session.pk, identity=owner.identity) == owner.name
    )
    assert store.participant_name(session_id=video_session.pk, identity=member.identity) is None
    assert store.participant_name(session_id=other.pk, identity=owner.identity) is None


def test_a_custom_provider_with_a_long_dotted_path_starts_a_run(settings, owner, video_session):
    """STT_PROVIDER may be ``package.module:Class``: its name is stored on the run (and its
    meter) whole; a 39-character one was a database error on PostgreSQL (varchar 32)."""
    settings.STT_PROVIDER = "benchmarks.instant_stt:InstantSttStream"
    # (The launch happens on commit, which this test's transaction never reaches.)
    run = services.run_start(session=video_session, by=owner)
    run.refresh_from_db()
    assert run.provider == "benchmarks.instant_stt:InstantSttStream"
    assert run.usage.provider == run.provider
