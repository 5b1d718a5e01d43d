"""Redis restarts during a run (empty: no persistence, as in tests and ``make up``). The
channel layer and the Celery broker reconnect; the run goes on in its worker and stores every
final once. What Redis carried in the gap is lost by design: live events (partials and
finals) published while it was down never reach the pages, which get the finals back from
``history`` when they reconnect; the queued task messages of that moment are gone."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from celery import Celery
from channels.db import database_sync_to_async
from django.db import connection

from sessions_app.models import SessionAnalysis
from sessions_app.tasks import analyse_session
from tests.transcription.server_conftest import (
    Stack,
    Watcher,
    assert_usage,
    finals_after,
    join_session,
    run_row,
    single,
    start_redis,
    start_server_run,
    start_server_stack,
    stop_run,
    stopped,
    stored_finals,
    wait_until,
)
from transcription.models import TranscriptionRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

DOWN_SECONDS = 2.0


@dataclass
class RedisServer:
    tmp: Path
    process: subprocess.Popen
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/")[0])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def start(self) -> None:
        self.process, _ = start_redis(self.tmp, self.port)


@pytest.fixture(scope="module", name="redis_server")
def redis_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    tmp = tmp_path_factory.mktemp("redis")
    process, url = start_redis(tmp)
    server = RedisServer(tmp, process, url)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


@pytest.fixture(scope="module", name="server_stack")
def server_stack_fixture(
    redis_server: RedisServer, django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("redis-restart")
    with start_server_stack(tmp, redis_url=redis_server.url, name="faults-redis") as stack:
        yield stack


async def test_redis_restart_mid_run_loses_no_stored_final_and_everything_reconnects(
    server_mode: Stack,
    redis_server: RedisServer,
    owner: Any,
    member: Any,
    owner_api: Any,
    video_session: Any,
    watch: Any,
) -> None:
    stack = server_mode
    slug = video_session.slug
    await join_session(video_session, owner, member)
    await watch(owner, slug, speakers=[owner.identity])
    listener = await watch(member, slug)
    run_id = await start_server_run(owner_api, slug)
    await finals_after(listener, 3, timeout=30, what="finals before the restart")

    redis_server.stop()
    down_at = time.monotonic()
    await asyncio.sleep(DOWN_SECONDS)
    redis_server.start()
    up_at = time.monotonic()
    before = len(listener.finals())
    # The same page hears the run again once the layer has resubscribed its group.
    await finals_after(listener, before + 1, timeout=30, what="live finals after the restart")
    recovered = time.monotonic() - up_at
    await finals_after(listener, before + 3, timeout=30, what="more finals after the restart")
    run = await run_row(run_id)
    assert run.status == TranscriptionRun.Status.ACTIVE and run.attempts == 0

    await stop_run(owner_api, slug)
    await stopped(listener, run_id)

    (session,) = await stack.gladia_sessions()
    sent = single(session["finals"])
    stored = set(await stored_finals(video_session.pk))
    assert stored == sent, f"lost {sent - stored}, unexpected {stored - sent}"
    seen = single(listener.final_ids())
    assert seen <= sent
    missed = sent - seen
    # Only finals of the gap: made in the outage, or the moment around it.
    assert len(missed) <= DOWN_SECONDS + 2, missed
    # A page that (re)connects now gets every final from history.
    page = Watcher(member, slug)
    await page.start()
    try:
        history = await wait_until(
            lambda: next((m for m in page.messages if m.get("type") == "history"), None),
            timeout=15,
            what="history",
        )
    finally:
        await page.close()
    assert {s["utterance_id"] for s in history["segments"]} == sent
    usage = await assert_usage(run_id)
    assert usage.final_count == len(sent)

    # The broker reconnected on both sides: a new run is queued, taken and transcribes.
    second = await start_server_run(owner_api, slug)
    await wait_until(lambda: listener.has_status("ACTIVE", second), timeout=30, what="2nd run")
    await stop_run(owner_api, slug)
    await stopped(listener, second)
    print(
        f"Redis down {up_at - down_at:.1f} s; live finals again {recovered:.2f} s after it "
        f"returned; {len(missed)} live finals missed by the open page (in history)"
    )


async def test_redis_restart_while_the_worker_holds_an_unacknowledged_task_it_goes_on_taking_runs(
    server_mode: Stack,
    redis_server: RedisServer,
    owner: Any,
    member: Any,
    owner_api: Any,
    video_session: Any,
    watch: Any,
) -> None:
    """Redis goes away while the worker runs a task it acknowledges late (an analysis, held
    here on a row lock) and waits on its queues. Celery closes the lost connection, and closing
    its channel gives the unacknowledged message back through a client made from the transport
    Celery has already detached: with kombu's Redis transport that is an ``AttributeError``,
    which Celery takes as unrecoverable, and the worker never takes another run
    (``rooms/broker.py``)."""
    stack = server_mode
    slug = video_session.slug
    await join_session(video_session, owner, member)
    listener = await watch(member, slug)
    await database_sync_to_async(SessionAnalysis.objects.create)(session=video_session)
    held = await database_sync_to_async(_lock_analysis)(video_session.pk)
    try:
        analyse_session.delay(video_session.pk)
        await wait_until(
            lambda: _running(stack, "sessions_app.tasks.analyse_session"),
            timeout=15,
            what="the analysis to wait on its lock in the worker",
        )
        redis_server.stop()
        await asyncio.sleep(DOWN_SECONDS)
        redis_server.start()
    finally:
        # Settled meanwhile, so the analysis claims nothing and ends once the lock goes.
        with held.cursor() as cursor:
            cursor.execute(
                "UPDATE sessions_app_sessionanalysis SET status = 'DONE' WHERE session_id = %s",
                [video_session.pk],
            )
        held.commit()
        held.close()

    run_id = await start_server_run(owner_api, slug)
    await wait_until(lambda: listener.has_status("ACTIVE", run_id), timeout=30, what="the run")
    await stop_run(owner_api, slug)
    await stopped(listener, run_id)


def _lock_analysis(session_id: int) -> Any:
    """A connection of its own holding the session's analysis row until it commits."""
    held = psycopg.connect(**connection.get_connection_params())
    with held.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM sessions_app_sessionanalysis WHERE session_id = %s FOR UPDATE",
            [session_id],
        )
    return held


async def _running(stack: Stack, task: str) -> bool:
    """Whether the stack's worker executes ``task`` now, asked over its remote control from an
    app of its own: a connection of this process's app kept from before the restart would be
    stale at the teardown's question."""
    probe = Celery("redis-restart-probe", broker=stack.redis_url, set_as_current=False)
    try:
        inspect = probe.control.inspect(destination=[stack.worker_name], timeout=1.0)
        replies = await asyncio.to_thread(inspect.active) or {}
    finally:
        probe.close()
    return any(active["name"] == task for tasks in replies.values() for active in tasks)
