"""SIGTERM to a Daphne that runs a transcription run itself (embedded runner): before it exits
it drains the provider, stores every final and the meter, and leaves the run STARTING — the
session goes on. The next Daphne resumes the run as soon as it serves a request; the pages
reconnect to it and resync from ``history``. Nothing is lost, nothing is stored twice."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx
import pytest
from channels.db import database_sync_to_async
from rest_framework.authtoken.models import Token

from sessions_app.tokens import transcription_token_create
from tests.faults.sockets import ResyncingClient, daphne
from tests.transcription.server_conftest import (
    Stack,
    join_session,
    run_row,
    seconds_until,
    single,
    stored_finals,
    usage_rows,
    wait_until,
)
from transcription.models import TranscriptionRun
from transcription.services import run_stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

S = TranscriptionRun.Status


async def test_sigterm_to_a_daphne_running_a_run_stores_everything_and_the_next_daphne_resumes(
    server_mode: Stack, owner: Any, member: Any, video_session: Any, watch: Any
) -> None:
    stack = server_mode
    slug = video_session.slug
    await join_session(video_session, owner, member)
    await watch(owner, slug, speakers=[owner.identity])
    token = await database_sync_to_async(lambda: Token.objects.create(user=owner).key)()
    env = {**stack.env, "TRANSCRIPTION_RUNNER": "embedded"}
    ws_token = transcription_token_create(session_slug=slug, identity=member.identity)
    path = f"/ws/sessions/{slug}/transcript/?token={ws_token}"
    with daphne("faults-embedded-a", env) as a, daphne("faults-embedded-b", env) as b:
        # B listens from the start but serves nothing until A is gone: its first request is
        # what makes it resume handed-off runs.
        pages = [ResyncingClient(path, [a.ws, b.ws]) for _ in range(2)]
        for page in pages:
            page.start()
        try:
            await wait_until(lambda: all(p.connections for p in pages), timeout=30, what="pages")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.port}") as api:
                reply = await api.post(
                    f"/api/sessions/{slug}/transcription/start",
                    headers={"Authorization": f"Token {token}"},
                    timeout=30,
                )
            assert reply.status_code == 201, reply.text
            run_id = reply.json()["run_id"]
            await wait_until(
                lambda: all(len(p.finals) >= 3 for p in pages), timeout=40, what="finals on A"
            )

            on_a = (await run_row(run_id)).control_channel
            a.process.send_signal(signal.SIGTERM)
            sent_at = time.monotonic()
            resumed = asyncio.create_task(
                seconds_until(
                    sent_at, lambda: _active_elsewhere(run_id, on_a), timeout=40, what="run on B"
                )
            )
            code = await asyncio.to_thread(a.process.wait, 40)
            exit_seconds = time.monotonic() - sent_at
            assert code == 0, "see artifacts/faults-embedded-a.log"
            # Before it exited, A drained its Gladia session and stored every final of it (B
            # may have resumed the run already: the pages reconnect as A closes them).
            first = (await stack.gladia_sessions())[0]
            assert first["ended"], "A drained its Gladia session"
            assert set(first["finals"]) <= set(await stored_finals(video_session.pk))

            await wait_until(
                lambda: all(
                    p.has_status("ACTIVE", run_id) and len(p.connections) == 2 for p in pages
                ),
                timeout=30,
                what="the pages on B and the run resumed there",
            )
            resumed_seconds = await resumed
            now = max(len(p.finals) for p in pages)
            await wait_until(
                lambda: all(len(p.finals) >= now + 3 for p in pages),
                timeout=40,
                what="finals from B",
            )
            await database_sync_to_async(run_stop)(run=await run_row(run_id))
            await wait_until(
                lambda: all(p.has_status("STOPPED", run_id) for p in pages),
                timeout=30,
                what="STOPPED",
            )
            assert b.process.poll() is None
        finally:
            for page in pages:
                await page.close()

    run = await run_row(run_id)
    assert run.status == S.STOPPED and run.attempts == 0
    old, new = await stack.gladia_sessions()
    sent = single(old["finals"] + new["finals"])
    assert set(await stored_finals(video_session.pk)) == sent
    for page in pages:
        assert set(page.finals) == sent, f"page missed {sent - set(page.finals)}"
    (usage,) = await usage_rows(run_id)
    assert usage.finalized and usage.final_count == len(sent)
    received = old["received_bytes"] + new["received_bytes"]
    assert abs(usage.duration_seconds - received / 32000) < 0.5
    print(
        f"SIGTERM -> Daphne exited {exit_seconds:.2f} s, "
        f"run ACTIVE on the next {resumed_seconds:.2f} s"
    )


async def _active_elsewhere(run_id: int, channel: str) -> bool:
    run = await run_row(run_id)
    return run.status == S.ACTIVE and run.control_channel not in ("", channel)
