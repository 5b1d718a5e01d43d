"""SIGTERM to the Celery worker that runs a transcription run: the run hands off — its last
finals and meter are stored, it becomes STARTING (not STOPPED: the session goes on) and another
worker takes it over at once. Nothing is lost, nothing is stored twice."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from rooms.celery import app as celery_app
from tests.transcription.server_conftest import (
    Stack,
    assert_nothing_lost_or_duplicated,
    assert_usage,
    extra_worker,
    ffmpeg_listeners,
    finals_after,
    join_session,
    run_row,
    seconds_until,
    single,
    start_server_run,
    stop_run,
    stopped,
    stored_finals,
)
from transcription.models import TranscriptionRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

S = TranscriptionRun.Status


async def test_sigterm_to_the_ingest_worker_hands_the_run_to_another_worker_losing_nothing(
    server_mode: Stack, owner: Any, member: Any, owner_api: Any, video_session: Any, watch: Any
) -> None:
    stack = server_mode
    slug = video_session.slug
    await join_session(video_session, owner, member)
    await watch(owner, slug, speakers=[owner.identity])
    listener = await watch(member, slug)
    with extra_worker(stack, "faults-leaving") as (leaving, leaving_name):
        # The run goes to the worker that will leave: the stack's worker stops taking runs.
        celery_app.control.cancel_consumer("ingest", destination=[stack.worker_name], reply=True)
        try:
            run_id = await start_server_run(owner_api, slug)
            await finals_after(listener, 3, timeout=30, what="finals before the SIGTERM")
        finally:
            celery_app.control.add_consumer("ingest", destination=[stack.worker_name], reply=True)
        first = await run_row(run_id)
        assert ffmpeg_listeners(leaving.pid) and not stack.listeners(), "in the leaving worker"

        leaving.send_signal(signal.SIGTERM)
        sent_at = time.monotonic()
        resumed = asyncio.create_task(
            seconds_until(
                sent_at,
                lambda: _resumed(listener, run_id),
                timeout=40,
                what="the run ACTIVE in the other worker",
            )
        )
        handoff_seconds = await seconds_until(
            sent_at, lambda: _resumed(listener, run_id) is not None, timeout=30, what="hand-off"
        )
        code = await _exit_code(leaving, timeout=30)
        exit_seconds = time.monotonic() - sent_at
        assert code == 0, f"the worker exited with {code}; see artifacts/{leaving_name}.log"

    resumed_seconds = await resumed
    after = len(listener.finals())
    await finals_after(listener, after + 3, timeout=30, what="finals after the hand-off")
    assert stack.listeners(), "the stack's worker runs the ingest now"

    await stop_run(owner_api, slug)
    await stopped(listener, run_id)
    run = await run_row(run_id)
    assert run.status == S.STOPPED
    assert run.attempts == 0, "a hand-off is not a failure"
    assert run.ingest_port == first.ingest_port and run.egress_id == first.egress_id
    # Both Gladia sessions' finals: stored once each, shown once each, none lost.
    old, new = await stack.gladia_sessions()
    assert old["ended"], "the leaving runner drained its Gladia session"
    sent = single(old["finals"] + new["finals"])
    assert set(await stored_finals(video_session.pk)) == sent
    await assert_nothing_lost_or_duplicated(stack, listener, video_session.pk)
    usage = await assert_usage(run_id)
    assert usage.final_count == len(sent)
    received = old["received_bytes"] + new["received_bytes"]
    assert abs(usage.duration_seconds - received / 32000) < 0.5
    print(
        f"SIGTERM -> handed off {handoff_seconds:.2f} s, worker exited {exit_seconds:.2f} s, "
        f"ACTIVE again {resumed_seconds:.2f} s"
    )


def _resumed(listener: Any, run_id: int) -> bool | None:
    """None before the hand-off (ACTIVE then STARTING); then whether it is ACTIVE again."""
    seen = [m["status"] for m in listener.statuses(run_id)]
    if "ACTIVE" not in seen or "STARTING" not in seen[seen.index("ACTIVE") :]:
        return None
    handed = seen.index("STARTING", seen.index("ACTIVE"))
    return "ACTIVE" in seen[handed:]


async def _exit_code(process: Any, *, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        assert time.monotonic() < deadline, f"the worker still runs {timeout} s after SIGTERM"
        await asyncio.sleep(0.1)
    return process.returncode
