"""Inactive LIVE sessions are ended by a periodic task (Celery beat, or Daphne itself in
embedded mode); joins, stored finals and open session pages count as activity."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone

from sessions_app import sweeper
from sessions_app.models import Participant, VideoSession
from sessions_app.services import session_join, sessions_touch
from sessions_app.tasks import end_inactive_sessions
from tests.factories import VideoSessionFactory
from tests.transcription.conftest import Client
from transcription import consumers
from transcription.live.batching import RunBatcher
from transcription.live.store import FinalSegment
from transcription.models import TranscriptionRun, TranscriptionUsage

S = VideoSession.Status


@pytest.fixture(autouse=True)
def _one_hour(settings):
    settings.SESSION_INACTIVE_MINUTES = 60
    settings.TRANSCRIPTION_RUNNER = "embedded"
    settings.LIVEKIT_ENABLED = False


def _session(space, status: str = S.LIVE, idle: timedelta = timedelta(0)) -> VideoSession:
    at = timezone.now() - idle
    return VideoSessionFactory(
        space=space,
        created_by=space.created_by,
        status=status,
        started_at=at if status != S.CREATED else None,
        last_activity_at=at,
    )


def _idle(session: VideoSession) -> timedelta:
    session.refresh_from_db()
    return timezone.now() - session.last_activity_at


def test_beat_runs_the_sweep_every_few_minutes():
    entry = django_settings.CELERY_BEAT_SCHEDULE["end-inactive-sessions"]
    assert entry["task"] == end_inactive_sessions.name
    assert 0 < entry["schedule"] <= 600


@pytest.mark.django_db
def test_only_live_sessions_idle_past_the_limit_are_ended(space):
    stale = _session(space, idle=timedelta(minutes=61))
    fresh = _session(space, idle=timedelta(minutes=59))
    never_joined = _session(space, S.CREATED, idle=timedelta(days=3))
    over = _session(space, S.ENDED, idle=timedelta(days=3))
    over_ended_at = over.ended_at

    assert end_inactive_sessions.delay().get() == [stale.slug]

    statuses = {s.slug: s.status for s in VideoSession.objects.all()}
    assert statuses == {
        stale.slug: S.ENDED,
        fresh.slug: S.LIVE,
        never_joined.slug: S.CREATED,
        over.slug: S.ENDED,
    }
    over.refresh_from_db()
    assert over.ended_at == over_ended_at
    assert end_inactive_sessions.delay().get() == [], "a second sweep finds nothing to do"


@pytest.mark.django_db
def test_the_limit_is_a_setting(settings, space):
    settings.SESSION_INACTIVE_MINUTES = 10
    session = _session(space, idle=timedelta(minutes=11))
    assert end_inactive_sessions() == [session.slug]


@pytest.mark.django_db
def test_ending_an_inactive_session_stops_its_run_and_finalises_usage(space, owner):
    session = _session(space, idle=timedelta(hours=2))
    Participant.objects.create(session=session, user=owner, identity=owner.identity, name="O")
    run = TranscriptionRun.objects.create(
        session=session, mode="BROWSER", provider="local", started_by=owner
    )
    TranscriptionUsage.objects.create(
        session=session,
        run=run,
        provider="local",
        duration_seconds=61,
        cost_per_minute=Decimal("0.01"),
    )

    end_inactive_sessions()

    run.refresh_from_db()
    assert run.is_finished
    usage = TranscriptionUsage.objects.get(run=run)
    assert usage.finalized
    assert usage.billed_minutes == 2
    assert usage.total_cost == Decimal("0.02")
    assert Participant.objects.get(session=session).left_at is not None


@pytest.mark.django_db
def test_a_join_is_activity(space, member):
    session = _session(space, idle=timedelta(minutes=90))
    session_join(session=session, user=member)
    assert _idle(session) < timedelta(seconds=5)
    assert end_inactive_sessions() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_stored_finals_are_activity_written_at_most_once_a_minute(space):
    session = await database_sync_to_async(_session)(space, idle=timedelta(minutes=90))
    run = await database_sync_to_async(TranscriptionRun.objects.create)(
        session=session, mode="BROWSER", provider="local"
    )
    batcher = RunBatcher()

    def final(utterance_id: str) -> FinalSegment:
        return FinalSegment(
            session_id=session.pk,
            run_id=run.pk,
            utterance_id=utterance_id,
            text="hello",
            language="en",
            start_offset=1.0,
            end_offset=2.0,
            speaker_identity=None,
            speaker_name=None,
        )

    async def idle() -> timedelta:
        return await database_sync_to_async(_idle)(session)

    batcher.add_final(final("u1"))
    assert await batcher.flush()
    assert await idle() < timedelta(seconds=5)

    await database_sync_to_async(VideoSession.objects.filter(pk=session.pk).update)(
        last_activity_at=timezone.now() - timedelta(minutes=90)
    )
    batcher.add_final(final("u2"))
    assert await batcher.flush()
    assert await idle() > timedelta(minutes=89), "no second write within the minute"

    batcher.activity_at[session.pk] -= 61  # a minute later
    batcher.add_final(final("u3"))
    assert await batcher.flush()
    assert await idle() < timedelta(seconds=5)
    assert await database_sync_to_async(end_inactive_sessions)() == []


@pytest.mark.django_db
def test_touch_writes_only_live_sessions_idle_for_a_minute(space):
    recent = _session(space, idle=timedelta(seconds=20))
    older = _session(space, idle=timedelta(seconds=90))
    ended = _session(space, S.ENDED, idle=timedelta(hours=3))
    assert sessions_touch(session_ids=[recent.pk, older.pk, ended.pk]) == 1
    assert _idle(older) < timedelta(seconds=5)
    assert _idle(ended) > timedelta(hours=2)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_open_session_page_keeps_the_session_active(monkeypatch, space, member):
    session = await database_sync_to_async(_session)(space, idle=timedelta(minutes=90))
    page = Client(member, session.slug)
    await page.connect()
    await page.next()  # connected
    assert await database_sync_to_async(_idle)(session) < timedelta(seconds=5)

    await database_sync_to_async(VideoSession.objects.filter(pk=session.pk).update)(
        last_activity_at=timezone.now() - timedelta(minutes=90)
    )
    await page.comm.send_to(text_data='{"type": "ping"}')
    await page.until(lambda m: m.get("type") == "pong")
    # This socket wrote a moment ago: its pings write again only a minute later.
    assert await database_sync_to_async(_idle)(session) > timedelta(minutes=89)

    monkeypatch.setattr(consumers, "ACTIVITY_EVERY", 0.0)  # ... a minute later
    await page.comm.send_to(text_data='{"type": "ping"}')
    await page.until(lambda m: m.get("type") == "pong")
    assert await database_sync_to_async(_idle)(session) < timedelta(seconds=5)
    assert await database_sync_to_async(end_inactive_sessions)() == []
    await page.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_embedded_daphne_sweeps_without_celery_beat(settings, space):
    settings.SESSION_INACTIVE_SWEEP_SECONDS = 0.05
    session = await database_sync_to_async(_session)(space, idle=timedelta(hours=2))

    async def respond(request):
        return HttpResponse("ok")

    middleware = sweeper.InactiveSweepMiddleware(respond)
    response = await middleware(RequestFactory().get("/"))
    assert response.status_code == 200
    task = sweeper.sweep_start()
    assert task is not None and not task.done()
    assert sweeper.sweep_start() is task, "one sweep per server loop"
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            await database_sync_to_async(session.refresh_from_db)()
            if session.status == S.ENDED or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert session.status == S.ENDED
    finally:
        task.cancel()
