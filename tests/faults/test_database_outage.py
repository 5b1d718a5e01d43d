"""PostgreSQL away for 10 s during a run: the runner keeps transcribing, buffers its finals and
stores every one of them, once, when the database is back.

The Celery worker and beat reach PostgreSQL through a TCP proxy the test cuts (every
connection reset, new ones refused) and restores; the test reads the database directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from tests.faults.proxy import TcpProxy
from tests.live import database_env
from tests.transcription.server_conftest import (
    FakesThread,
    Stack,
    assert_nothing_lost_or_duplicated,
    assert_usage,
    finals_after,
    join_session,
    run_row,
    start_server_run,
    start_server_stack,
    stop_run,
    stopped,
    stored_finals,
    wait_until,
)
from transcription.models import TranscriptionRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

OUTAGE_SECONDS = 10.0


@pytest.fixture(scope="module", name="db_proxy")
def db_proxy_fixture(django_db_setup: None) -> Iterator[tuple[TcpProxy, FakesThread]]:
    from django.db import connection

    db = connection.settings_dict
    proxy = TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))
    loop = FakesThread()
    loop.run(proxy.start())
    try:
        yield proxy, loop
    finally:
        loop.run(proxy.stop())
        loop.close()


@pytest.fixture(scope="module", name="server_stack")
def server_stack_fixture(
    db_proxy: tuple[TcpProxy, FakesThread],
    django_db_setup: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The server-mode stack with its worker and beat behind the proxy. The stale time is
    longer than the outage: a runner that is alive but cannot reach the database must not be
    restarted by the supervisor (which cannot reach it either until it is back)."""
    proxy, _ = db_proxy
    url = database_env()["DATABASE_URL"]
    host_port = url.rsplit("@", 1)[1].split("/", 1)[0]
    proxied = url.replace(f"@{host_port}/", f"@127.0.0.1:{proxy.port}/")
    # Workers keep their connection as `make up` and compose run them: the outage resets it.
    env = {"DATABASE_URL": proxied, "TRANSCRIPTION_STALE_SECONDS": "30", "DB_CONN_MAX_AGE": "60"}
    with start_server_stack(tmp_path_factory.mktemp("db-outage"), env=env, name="faults-db") as s:
        yield s


async def test_finals_made_while_postgres_is_away_for_10_s_are_stored_once_when_it_is_back(
    server_mode: Stack,
    db_proxy: tuple[TcpProxy, FakesThread],
    owner: Any,
    member: Any,
    owner_api: Any,
    video_session: Any,
    watch: Any,
) -> None:
    stack, (proxy, proxy_loop) = server_mode, db_proxy
    slug = video_session.slug
    await join_session(video_session, owner, member)
    await watch(owner, slug, speakers=[owner.identity])
    listener = await watch(member, slug)
    run_id = await start_server_run(owner_api, slug)
    await finals_after(listener, 3, timeout=30, what="finals before the outage")
    assert proxy.connections > 0, "the worker reaches PostgreSQL through the proxy"

    await _run_on(proxy_loop, proxy.cut())
    cut_after = len(listener.finals())
    await asyncio.sleep(OUTAGE_SECONDS)
    during = listener.final_ids()[cut_after:]
    # The run went on: clients kept getting finals, which could not be stored meanwhile.
    assert len(during) >= OUTAGE_SECONDS / 2, during
    stored = await stored_finals(video_session.pk)
    assert not set(during) & set(stored), "the outage was real: nothing was written through it"
    run = await run_row(run_id)
    assert run.status == TranscriptionRun.Status.ACTIVE

    await _run_on(proxy_loop, proxy.restore())
    restored_at = time.monotonic()
    await wait_until(
        lambda: _stored_all(video_session.pk, during),
        timeout=15,
        what="the buffered finals to be stored",
    )
    recovery = time.monotonic() - restored_at
    print(f"buffered finals stored {recovery:.2f} s after PostgreSQL returned")
    now = len(listener.finals())
    await finals_after(listener, now + 2, timeout=30, what="finals after the outage")

    await stop_run(owner_api, slug)
    await stopped(listener, run_id)
    run = await run_row(run_id)
    assert run.status == TranscriptionRun.Status.STOPPED and run.attempts == 0
    await assert_nothing_lost_or_duplicated(stack, listener, video_session.pk)
    usage = await assert_usage(run_id)
    (session,) = await stack.gladia_sessions()
    assert usage.final_count == len(session["finals"])
    assert abs(usage.duration_seconds - session["received_bytes"] / 32000) < 0.5


async def _run_on(loop: FakesThread, coro: Coroutine[Any, Any, None]) -> None:
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop.loop))


async def _stored_all(session_id: int, ids: list[str]) -> bool:
    return set(ids) <= set(await stored_finals(session_id))
