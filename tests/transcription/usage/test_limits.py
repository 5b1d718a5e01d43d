"""Transcription limits: the kill switch, runs per user (racing on PostgreSQL), the space's
month minutes, and running runs stopped by their minute budget with their usage finalised."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.utils import timezone

from rooms.errors import Forbidden, LimitExceeded
from sessions_app.models import VideoSession
from spaces.models import SpaceLimits, TranscriptionSwitch
from tests.factories import SpaceFactory, SpaceMemberFactory, UserFactory, VideoSessionFactory
from tests.transcription.conftest import wait_for_run
from transcription.live.broadcast import session_group
from transcription.live.ingest import BYTES_PER_SECOND
from transcription.live.launch import launch
from transcription.live.pipeline import RunPipeline
from transcription.models import TranscriptionRun, TranscriptionUsage
from transcription.services import run_start
from transcription.usage import limits

S = TranscriptionRun.Status
INSTANT = "tests.fakes.instant_stt:Instant"


@pytest.fixture(autouse=True)
def _browser_mode_with_the_instant_engine(settings):
    settings.LIVEKIT_ENABLED = False
    settings.TRANSCRIPTION_MODE = "auto"
    settings.STT_PROVIDER = INSTANT
    settings.TRANSCRIPTION_RUNNER = "embedded"
    settings.TRANSCRIPTION_NEW_RUNS_DISABLED = False
    settings.TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER = 5
    settings.TRANSCRIPTION_MAX_RUN_MINUTES = 0
    settings.TRANSCRIPTION_MAX_MONTH_MINUTES = 0
    settings.TRANSCRIPTION_COST_PER_MINUTE = Decimal("0.01")


def start_url(session: VideoSession) -> str:
    return f"/api/sessions/{session.slug}/transcription/start"


def _sessions(space, n: int) -> list[VideoSession]:
    return [
        VideoSessionFactory(space=space, created_by=space.created_by, status="LIVE")
        for _ in range(n)
    ]


def _usage(session: VideoSession, minutes: int, *, created_at=None) -> TranscriptionUsage:
    run = TranscriptionRun.objects.create(
        session=session, mode="BROWSER", provider="local", status=S.STOPPED
    )
    return TranscriptionUsage.objects.create(
        session=session,
        run=run,
        provider="local",
        duration_seconds=minutes * 60,
        billed_minutes=minutes,
        finalized=True,
        created_at=created_at or timezone.now(),
    )


# --- runs per user ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_user_at_the_run_limit_is_refused_and_one_below_is_not(settings, space, member):
    settings.TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER = 2
    first, second, third = _sessions(space, 3)
    run_start(session=first, by=member)
    run_start(session=second, by=member)  # the second of two: at the limit, allowed
    with pytest.raises(LimitExceeded) as refused:
        run_start(session=third, by=member)
    assert refused.value.code == "too_many_runs"
    assert "Stop one of them" in refused.value.message
    assert not TranscriptionRun.objects.filter(session=third).exists()


@pytest.mark.django_db
def test_finished_runs_do_not_count_against_the_limit(settings, space, member):
    settings.TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER = 1
    first, second = _sessions(space, 2)
    run = run_start(session=first, by=member)
    TranscriptionRun.objects.filter(pk=run.pk).update(status=S.STOPPED)
    assert run_start(session=second, by=member).session_id == second.pk


@pytest.mark.django_db
def test_joining_the_run_a_session_already_has_is_not_a_new_run(settings, space, owner, member):
    settings.TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER = 1
    first, second = _sessions(space, 2)
    run_start(session=first, by=member)
    theirs = run_start(session=second, by=owner)
    # The member is at the limit, but the second session's run exists: they get that one.
    assert run_start(session=second, by=member).pk == theirs.pk


@pytest.mark.django_db
def test_space_override_beats_the_setting(settings, space, member):
    settings.TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER = 1
    SpaceLimits.objects.create(space=space, max_active_runs_per_user=3)
    sessions = _sessions(space, 4)
    for session in sessions[:3]:
        run_start(session=session, by=member)
    with pytest.raises(LimitExceeded):
        run_start(session=sessions[3], by=member)


@pytest.mark.django_db
def test_zero_means_unlimited_and_an_empty_override_uses_the_setting(settings, space, member):
    settings.TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER = 0
    SpaceLimits.objects.create(space=space, max_active_runs_per_user=None)
    for session in _sessions(space, 7):
        run_start(session=session, by=member)
    assert TranscriptionRun.objects.filter(started_by=member).count() == 7


@pytest.mark.django_db
def test_api_answers_429_with_a_code_when_the_user_has_too_many_runs(
    settings, space, member, member_api
):
    settings.TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER = 1
    first, second = _sessions(space, 2)
    run_start(session=first, by=member)
    response = member_api.post(start_url(second))
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "too_many_runs"
    assert "limit is 1" in body["detail"]


@pytest.mark.django_db
def test_outsider_gets_404_not_a_limit(settings, video_session, outsider_api):
    settings.TRANSCRIPTION_NEW_RUNS_DISABLED = True
    response = outsider_api.post(start_url(video_session))
    assert response.status_code == 404


@pytest.mark.django_db
def test_malformed_start_gets_400(member_api, video_session):
    response = member_api.post(start_url(video_session), {"mode": "LOUDER"}, format="json")
    assert response.status_code == 400
    assert "mode" in response.json()


def _race(fn, n: int) -> list[object]:
    """Call ``fn`` from ``n`` threads at once (each with its own database connection)."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_starts_racing_on_postgresql_never_exceed_the_per_user_limit(
    settings, background_loop, space, member
):
    settings.TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER = 2
    sessions = _sessions(space, 6)
    results = _race(lambda i: run_start(session=sessions[i], by=member), 6)
    started = [r for r in results if isinstance(r, TranscriptionRun)]
    refused = [r for r in results if isinstance(r, LimitExceeded)]
    assert len(started) == 2, results
    assert len(refused) == 4, results
    assert {r.code for r in refused} == {"too_many_runs"}
    assert TranscriptionRun.objects.filter(started_by=member).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_starts_of_one_session_racing_make_one_run_at_the_limit(
    settings, background_loop, space, member
):
    settings.TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER = 1
    (session,) = _sessions(space, 1)
    results = _race(lambda i: run_start(session=session, by=member), 2)
    assert all(isinstance(r, TranscriptionRun) for r in results), results
    assert results[0].pk == results[1].pk
    assert TranscriptionRun.objects.filter(session=session).count() == 1


# --- kill switch -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_kill_switch_setting_refuses_new_runs_with_403(settings, video_session, member_api):
    settings.TRANSCRIPTION_NEW_RUNS_DISABLED = True
    response = member_api.post(start_url(video_session))
    assert response.status_code == 403
    assert response.json()["code"] == "transcription_disabled"
    assert "Try again later" in response.json()["detail"]
    assert not TranscriptionRun.objects.exists()


@pytest.mark.django_db
def test_staff_kill_switch_refuses_new_runs_with_its_message(video_session, member):
    TranscriptionSwitch.objects.create(new_runs_disabled=True, message="Provider outage.")
    with pytest.raises(Forbidden) as refused:
        run_start(session=video_session, by=member)
    assert refused.value.code == "transcription_disabled"
    assert refused.value.message == "Provider outage."


@pytest.mark.django_db
def test_kill_switch_leaves_the_run_already_going(video_session, owner, member):
    run = run_start(session=video_session, by=owner)
    TranscriptionSwitch.objects.create(new_runs_disabled=True)
    assert run_start(session=video_session, by=member).pk == run.pk


@pytest.mark.django_db
def test_switch_turned_off_allows_runs_again(video_session, member):
    switch = TranscriptionSwitch.objects.create(new_runs_disabled=True)
    switch.new_runs_disabled = False
    switch.save()
    assert TranscriptionSwitch.objects.count() == 1
    assert run_start(session=video_session, by=member).status == S.STARTING


# --- month minutes ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_month_budget_spent_refuses_a_start_and_one_minute_left_allows_it(
    settings, space, member, member_api
):
    settings.TRANSCRIPTION_MAX_MONTH_MINUTES = 10
    done, first, second = _sessions(space, 3)
    _usage(done, 9)
    assert run_start(session=first, by=member).status == S.STARTING
    _usage(done, 1)  # 10 of 10 used
    response = member_api.post(start_url(second))
    assert response.status_code == 403
    assert response.json()["code"] == "month_minutes_used"
    assert "10 transcription minutes" in response.json()["detail"]


@pytest.mark.django_db
def test_last_months_usage_and_other_spaces_do_not_count(settings, space, member):
    settings.TRANSCRIPTION_MAX_MONTH_MINUTES = 10
    (done,) = _sessions(space, 1)
    _usage(done, 50, created_at=limits.month_start() - timedelta(seconds=1))
    other = SpaceFactory()
    _usage(VideoSessionFactory(space=other, created_by=other.created_by), 50)
    (session,) = _sessions(space, 1)
    assert run_start(session=session, by=member).status == S.STARTING


@pytest.mark.django_db
def test_space_month_override_zero_lifts_the_setting(settings, space, member):
    settings.TRANSCRIPTION_MAX_MONTH_MINUTES = 1
    SpaceLimits.objects.create(space=space, max_month_minutes=0)
    done, session = _sessions(space, 2)
    _usage(done, 500)
    assert run_start(session=session, by=member).status == S.STARTING


def test_month_boundaries_are_utc_calendar_months():
    at = timezone.datetime(2026, 12, 31, 23, 59, tzinfo=timezone.get_fixed_timezone(-60))
    assert limits.month_start(at).isoformat() == "2027-01-01T00:00:00+00:00"
    assert limits.next_month_start(at).isoformat() == "2027-02-01T00:00:00+00:00"


@pytest.mark.django_db
def test_budget_is_the_lower_of_run_and_month_minutes(settings, space):
    settings.TRANSCRIPTION_MAX_RUN_MINUTES = 30
    settings.TRANSCRIPTION_MAX_MONTH_MINUTES = 100
    done, session = _sessions(space, 2)
    _usage(done, 95)
    run = TranscriptionRun.objects.create(session=session, mode="BROWSER", provider="local")
    TranscriptionUsage.objects.create(session=session, run=run, provider="local", billed_minutes=2)
    budget = limits.runs_budget(run_ids=[run.pk])[run.pk]
    # 100 - 95 used by the others; the run's own 2 minutes are inside its budget.
    assert budget.max_bytes == 5 * 60 * BYTES_PER_SECOND
    assert "this month" in budget.message
    SpaceLimits.objects.create(space=space, max_run_minutes=3, max_audio_senders=2)
    budget = limits.runs_budget(run_ids=[run.pk])[run.pk]
    assert budget.max_bytes == 3 * 60 * BYTES_PER_SECOND
    assert "a run may last 3 minutes" in budget.message
    assert budget.max_audio_senders == 2


# --- running runs crossing their budget ------------------------------------------------------


def _resumed_run(session: VideoSession, *, seconds: float) -> TranscriptionRun:
    """A STARTING run whose meter already holds ``seconds`` (as a restarted run's does)."""
    run = TranscriptionRun.objects.create(
        session=session, mode="BROWSER", provider=INSTANT, status=S.STARTING
    )
    TranscriptionUsage.objects.create(
        session=session,
        run=run,
        provider=INSTANT,
        cost_per_minute=Decimal("0.01"),
        duration_seconds=seconds,
        audio_bytes=int(seconds * BYTES_PER_SECOND),
    )
    return run


@pytest.mark.django_db(transaction=True)
def test_run_crossing_its_minute_limit_stops_itself_with_usage_finalised(
    settings, background_loop, space
):
    settings.TRANSCRIPTION_MAX_RUN_MINUTES = 1
    (session,) = _sessions(space, 1)
    run = _resumed_run(session, seconds=59.5)
    launch(run.pk)

    run = wait_for_run(run.pk, lambda r: r.is_finished, timeout=20)
    assert run.status == S.FAILED
    assert run.error_code == "limit_reached"
    assert "a run may last 1 minute. Start" in run.error
    usage = TranscriptionUsage.objects.get(run=run)
    assert usage.finalized
    # Stopped exactly at the budget: not one byte (or billed minute) past it.
    assert usage.audio_bytes == 60 * BYTES_PER_SECOND
    assert usage.duration_seconds == pytest.approx(60.0)
    assert usage.billed_minutes == 1
    assert usage.total_cost == Decimal("0.01")


@pytest.mark.django_db(transaction=True)
def test_run_stops_when_its_space_spends_the_month_while_it_runs(settings, background_loop, space):
    done, session = _sessions(space, 2)
    _usage(done, 1)
    run = _resumed_run(session, seconds=61.0)
    launch(run.pk)
    wait_for_run(run.pk, lambda r: r.status == S.ACTIVE, timeout=20)
    # Staff set a 2-minute month while it runs: the next checkpoint hands the run its budget.
    SpaceLimits.objects.create(space=space, max_month_minutes=2)

    run = wait_for_run(run.pk, lambda r: r.is_finished, timeout=20)
    assert run.status == S.FAILED
    assert run.error_code == "limit_reached"
    assert "used its 2 transcription minutes for this month" in run.error
    usage = TranscriptionUsage.objects.get(run=run)
    assert usage.finalized
    assert usage.billed_minutes == 2  # 61 s were already metered: it stops at once
    # It stopped at the first checkpoint (1 s here) after the limit was set, not later.
    assert usage.audio_bytes < 66 * BYTES_PER_SECOND


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_browser_run_mixes_no_more_senders_than_its_space_allows(settings, space):
    settings.TRANSCRIPTION_MAX_AUDIO_SENDERS = 10
    await database_sync_to_async(SpaceLimits.objects.create)(space=space, max_audio_senders=2)
    session = await database_sync_to_async(VideoSessionFactory)(
        space=space, created_by=space.created_by, status="LIVE"
    )
    run = await database_sync_to_async(_resumed_run)(session, seconds=0)
    run = await database_sync_to_async(
        lambda: TranscriptionRun.objects.select_related("session").get(pk=run.pk)
    )()
    pipeline = RunPipeline(run)
    task = asyncio.create_task(pipeline.run())
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while pipeline.batcher is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert pipeline.max_senders == 2
        layer = get_channel_layer()
        listener = await layer.new_channel("test.")
        await layer.group_add(session_group(session.pk), listener)
        frame = bytes(1280)
        for source in ("u-a", "u-b", "u-c", "u-a", "u-c"):
            await layer.send(
                pipeline.channel,
                {"type": "audio.frame", "source": source, "name": source.upper(), "pcm": frame},
            )
        # The run's ACTIVE status is broadcast just after the batcher is set, so it may reach
        # the listener first; nothing else may come before the error.
        told = await asyncio.wait_for(layer.receive(listener), timeout=5)
        if told["payload"]["type"] == "transcription_status":
            told = await asyncio.wait_for(layer.receive(listener), timeout=5)
        assert told["payload"]["type"] == "error"
        assert told["payload"]["code"] == "too_many_senders"
        assert "U-C's microphone is not transcribed" in told["payload"]["message"]
        assert set(pipeline.mixer.sources) == {"u-a", "u-b"}
        # Someone leaves: the waiting microphone is mixed from its next frame on.
        await layer.send(pipeline.channel, {"type": "audio.leave", "source": "u-b"})
        await layer.send(pipeline.channel, {"type": "audio.frame", "source": "u-c", "pcm": frame})
        while "u-c" not in pipeline.mixer.sources and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert set(pipeline.mixer.sources) == {"u-a", "u-c"}
        await layer.group_discard(session_group(session.pk), listener)
    finally:
        pipeline.stop_requested.set()
        await asyncio.wait_for(task, timeout=20)
    finished = await database_sync_to_async(TranscriptionRun.objects.get)(pk=run.pk)
    assert finished.status == S.STOPPED


@pytest.mark.django_db
def test_member_of_another_space_is_counted_per_user_across_spaces(settings, member):
    settings.TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER = 1
    a, b = SpaceFactory(), SpaceFactory()
    for s in (a, b):
        SpaceMemberFactory(space=s, user=member)
    run_start(session=_sessions(a, 1)[0], by=member)
    with pytest.raises(LimitExceeded):
        run_start(session=_sessions(b, 1)[0], by=member)
    other = UserFactory()
    SpaceMemberFactory(space=b, user=other)
    assert run_start(session=_sessions(b, 1)[0], by=other).status == S.STARTING
