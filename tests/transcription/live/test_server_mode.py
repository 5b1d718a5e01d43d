"""Server (egress) mode end to end: real Celery workers and beat over Redis, the fake LiveKit's
egress API pushing real RTMP audio to the run's ingest, the fake Gladia, WebSocket clients and
the database — and faults on each of them.

Fixtures: ``tests/transcription/server_conftest.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from livekit import api

from tests.transcription.server_conftest import (
    Stack,
    alive,
    assert_nothing_lost_or_duplicated,
    assert_usage,
    finals_after,
    join_session,
    no_listeners_left,
    run_row,
    server_mode_fixture,  # noqa: F401 (fixture "server_mode")
    server_stack_fixture,  # noqa: F401 (fixture "server_stack")
    single,
    start_server_run,
    stop_run,
    stopped,
    stored_finals,
    usage_rows,
    wait_until,
    watch_fixture,  # noqa: F401 (fixture "watch")
)
from transcription.live.ingest import ffmpeg_path
from transcription.models import TranscriptionRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

S = TranscriptionRun.Status


# --- helpers ---------------------------------------------------------------------------------


async def _push(url: str, flv: Any, *, timeout: float = 20.0) -> tuple[int, float]:
    """Publish ``flv`` to ``url`` as an RTMP client (not the egress); exit code and seconds."""
    began = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *(ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-nostdin", "-re"),
        *("-i", str(flv), "-t", "3", "-c", "copy", "-f", "flv", url),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        code = await asyncio.wait_for(proc.wait(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return code, time.monotonic() - began


# --- the happy path --------------------------------------------------------------------------


async def test_server_mode_run_transcribes_the_room_through_egress_ingest_and_stt(
    server_mode: Stack, owner, member, owner_api, member_api, video_session, watch
):
    stack = server_mode
    slug = video_session.slug
    await join_session(video_session, owner, member)
    speaker = await watch(owner, slug, speakers=[owner.identity])
    listener = await watch(member, slug)

    run_id = await start_server_run(owner_api, slug)
    await wait_until(lambda: listener.has_status("ACTIVE", run_id), timeout=30, what="ACTIVE")

    starts = await wait_until(
        lambda: stack.lk_requests("StartRoomCompositeEgress"), timeout=20, what="the egress"
    )
    run = await run_row(run_id)
    assert run.mode == TranscriptionRun.Mode.SERVER
    request = starts[0].request
    assert request.room_name == slug
    assert request.audio_only
    assert len(request.stream_outputs) == 1
    output = request.stream_outputs[0]
    assert output.protocol == api.StreamProtocol.RTMP
    low, high = stack.ingest_ports
    assert low <= run.ingest_port <= high
    assert list(output.urls) == [f"rtmp://127.0.0.1:{run.ingest_port}/live/{run.ingest_key}"]

    # The owner speaks first; then the room's active speaker becomes the member.
    await finals_after(listener, 4, timeout=30, what="finals from the owner")
    switched_after = len(listener.finals())
    await speaker.report_speakers([member.identity])
    await finals_after(listener, switched_after + 4, timeout=30, what="finals from the member")
    assert len(stack.listeners()) == 1, "one ingest listener for the run"
    # (Checked before the stop: the run closes its ingest before it stops the egress, and the
    # egress retries in between.)
    assert (await stack.egresses())[0].pushes == 1, "the egress never had to reconnect"

    await stop_run(member_api, slug)
    await stopped(listener, run_id)

    # One egress, started once, pushed once, stopped once; one Gladia stream.
    starts = await stack.lk_requests("StartRoomCompositeEgress")
    assert len(starts) == 1
    run = await run_row(run_id)
    assert run.status == S.STOPPED and run.egress_id and not run.error
    stops = await stack.lk_requests("StopEgress")
    assert [r.request.egress_id for r in stops] == [run.egress_id]
    assert [r.status for r in stops] == [200]
    egresses = await stack.egresses()
    assert [e.info.egress_id for e in egresses] == [run.egress_id]
    sessions = await stack.gladia_sessions()
    assert len(sessions) == 1 and sessions[0]["connections"] == 1
    await no_listeners_left(stack)

    # Finals: at every client and in the database, once each, attributed by the timeline.
    await assert_nothing_lost_or_duplicated(stack, listener, video_session.pk)
    assert speaker.final_ids() == listener.final_ids()
    stored = await stored_finals(video_session.pk)
    by_start = sorted(listener.finals(), key=lambda m: m["start"])
    speakers = [m["speaker_identity"] for m in by_start]
    first_member = speakers.index(member.identity)
    # Utterance n covers [n, n + 1) s of audio. When the report was sent, ``switched_after``
    # utterances were over; the switch lands at the audio then flowing (plus the egress
    # delay), so the next utterance or the one after is the member's.
    assert set(speakers[:first_member]) == {owner.identity}, speakers
    assert set(speakers[first_member:]) == {member.identity}, speakers
    assert switched_after <= first_member <= switched_after + 2, (switched_after, speakers)
    for message in by_start:
        row = stored[message["utterance_id"]]
        assert row["run_id"] == run_id
        assert row["speaker_identity"] == message["speaker_identity"]
        assert row["participant_id"] is not None

    usage = await assert_usage(run_id)
    # Metered audio is what reached Gladia.
    assert abs(usage.duration_seconds - sessions[0]["received_bytes"] / 32000) < 0.5


# --- LiveKit refuses --------------------------------------------------------------------------


async def test_twirp_error_fails_the_run_with_the_reason(
    server_mode: Stack, owner, member, owner_api, video_session, watch
):
    stack = server_mode
    slug = video_session.slug
    await join_session(video_session, owner)
    listener = await watch(member, slug)
    assert stack.livekit is not None
    fake = stack.livekit
    await stack.fakes.acall(
        lambda: fake.fail_next(
            "StartRoomCompositeEgress", code="resource_exhausted", msg="egress quota exceeded"
        )
    )

    run_id = await start_server_run(owner_api, slug)
    failed = await stopped(listener, run_id, "FAILED")
    assert failed["error_code"] == "egress"
    assert "resource_exhausted" in failed["error"] and "egress quota exceeded" in failed["error"]
    run = await run_row(run_id)
    assert run.status == S.FAILED and run.error_code == "egress"
    assert run.error == failed["error"]
    assert not run.egress_id
    (refused,) = await stack.lk_requests("StartRoomCompositeEgress")
    assert refused.status == 429
    await no_listeners_left(stack)
    assert len(await usage_rows(run_id)) == 1

    # Nothing is stuck: the next start gets an egress and transcribes.
    second = await start_server_run(owner_api, slug)
    assert second != run_id
    await wait_until(lambda: listener.has_status("ACTIVE", second), timeout=30, what="ACTIVE")
    await finals_after(listener, 2, timeout=30, what="finals of the second run")
    await stop_run(owner_api, slug)
    await stopped(listener, second)
    assert [r.status for r in await stack.lk_requests("StartRoomCompositeEgress")] == [429, 200]
    await assert_nothing_lost_or_duplicated(stack, listener, video_session.pk)


# --- faults ----------------------------------------------------------------------------------


async def test_ffmpeg_killed_mid_run_is_restarted_and_the_egress_reconnects(
    server_mode: Stack, owner, member, owner_api, video_session, watch
):
    stack = server_mode
    slug = video_session.slug
    await join_session(video_session, owner)
    listener = await watch(member, slug)
    run_id = await start_server_run(owner_api, slug)
    await finals_after(listener, 3, timeout=30, what="finals before the kill")

    (listener_pid,) = stack.listeners()
    os.kill(listener_pid, signal.SIGKILL)
    killed_after = len(listener.finals())

    await wait_until(lambda: _pushed_again(stack), timeout=15, what="the egress to push again")
    await finals_after(listener, killed_after + 3, timeout=30, what="finals after the kill")
    (new_pid,) = stack.listeners()
    assert new_pid != listener_pid

    await stop_run(owner_api, slug)
    await stopped(listener, run_id)
    run = await run_row(run_id)
    assert run.status == S.STOPPED and run.attempts == 0, "the run itself never restarted"
    assert len(await stack.lk_requests("StartRoomCompositeEgress")) == 1
    assert len(await stack.gladia_sessions()) == 1
    await assert_nothing_lost_or_duplicated(stack, listener, video_session.pk)
    await assert_usage(run_id)
    await no_listeners_left(stack)


async def _pushed_again(stack: Stack) -> bool:
    return (await stack.egresses())[0].pushes >= 2


async def test_killed_ingest_worker_is_restarted_by_the_supervisor_and_continues(
    server_mode: Stack, owner, member, owner_api, video_session, watch
):
    stack = server_mode
    slug = video_session.slug
    await join_session(video_session, owner, member)
    await watch(owner, slug, speakers=[owner.identity])
    listener = await watch(member, slug)
    run_id = await start_server_run(owner_api, slug)
    await finals_after(listener, 3, timeout=30, what="finals before the kill")
    first = await run_row(run_id)

    ((ffmpeg_pid, pool_pid),) = stack.listeners().items()
    assert pool_pid != stack.worker_pid, "the run executes in a pool process"
    os.kill(pool_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    killed_after = len(listener.finals())

    restarted = await wait_until(
        lambda: _active_again(run_id), timeout=30, what="the supervisor to restart the run"
    )
    restart_seconds = time.monotonic() - killed_at
    assert restarted.attempts == 1
    await finals_after(listener, killed_after + 3, timeout=30, what="finals after the restart")
    assert (await stack.egresses())[0].pushes >= 2, "the egress reconnected"
    ((_, new_pool),) = stack.listeners().items()
    assert new_pool != pool_pid

    await stop_run(owner_api, slug)
    await stopped(listener, run_id)
    run = await run_row(run_id)
    assert run.status == S.STOPPED and run.attempts == 1
    # The restarted runner took its port back, so the egress retried into it: still one.
    assert run.ingest_port == first.ingest_port and run.egress_id == first.egress_id
    assert len(await stack.lk_requests("StartRoomCompositeEgress")) == 1
    assert [r.request.egress_id for r in await stack.lk_requests("StopEgress")] == [run.egress_id]

    # Gladia: the dead runner's session, then the restarted runner's.
    old, new = await stack.gladia_sessions()
    sent_old, sent_new = single(old["finals"]), single(new["finals"])
    seen = single(listener.final_ids())
    stored = await stored_finals(video_session.pk)
    assert set(stored) <= sent_old | sent_new
    assert set(stored) <= seen, "whatever was stored was shown"
    assert sent_new <= set(stored), "nothing of the restarted runner is lost"
    # The kill window: finals the dead runner was sent but had not yet flushed (one flush
    # interval, 0.3 s, i.e. at most one 1-second utterance) are the only ones that may be lost.
    lost = sent_old - set(stored)
    assert len(lost) <= 1, lost
    assert not lost or old["finals"].index(lost.pop()) == len(old["finals"]) - 1
    assert all(stored[i]["speaker_identity"] == owner.identity for i in sent_new & set(stored))
    await assert_usage(run_id)
    await no_listeners_left(stack)
    await wait_until(lambda: not alive(ffmpeg_pid), timeout=10, what="the orphaned ffmpeg to exit")
    print(f"run restarted {restart_seconds:.1f} s after its worker process was killed")


@database_sync_to_async
def _active_again(run_id: int) -> TranscriptionRun | None:
    run = TranscriptionRun.objects.get(pk=run_id)
    return run if run.status == S.ACTIVE and run.attempts >= 1 else None


async def test_gladia_socket_drop_reconnects_and_loses_nothing(
    server_mode: Stack, owner, member, owner_api, video_session, watch
):
    stack = server_mode
    slug = video_session.slug
    await join_session(video_session, owner)
    listener = await watch(member, slug)
    assert stack.gladia is not None
    gladia = stack.gladia
    await stack.fakes.acall(lambda: gladia.fault(after_seconds=2.5, code=None))

    run_id = await start_server_run(owner_api, slug)
    await wait_until(
        lambda: _reconnected(stack), timeout=30, what="the Gladia socket to drop and reconnect"
    )
    dropped_after = len(listener.finals())
    await finals_after(listener, dropped_after + 3, timeout=30, what="finals after the drop")

    await stop_run(owner_api, slug)
    await stopped(listener, run_id)
    (session,) = await stack.gladia_sessions()
    assert session["connections"] == 2 and 1006 in session["close_codes"]
    assert len(session["finals"]) >= 5
    await assert_nothing_lost_or_duplicated(stack, listener, video_session.pk)
    usage = await assert_usage(run_id)
    assert usage.reconnect_count == 1


async def _reconnected(stack: Stack) -> bool:
    sessions = await stack.gladia_sessions()
    return bool(sessions) and sessions[0]["connections"] >= 2


async def test_rtmp_push_that_is_not_the_runs_egress_is_refused_and_adds_no_audio(
    server_mode: Stack, owner, member, owner_api, video_session, watch
):
    stack = server_mode
    slug = video_session.slug
    await join_session(video_session, owner)
    listener = await watch(member, slug)
    assert stack.livekit is not None
    fake = stack.livekit
    await stack.fakes.acall(lambda: setattr(fake, "egress_delay", 6.0))

    run_id = await start_server_run(owner_api, slug)
    await wait_until(
        lambda: stack.lk_requests("StartRoomCompositeEgress"), timeout=20, what="the egress"
    )
    run = await run_row(run_id)
    host = f"rtmp://127.0.0.1:{run.ingest_port}"
    # While the run waits for its egress: a wrong key, and the right key under another app.
    for url in (f"{host}/live/not-the-key", f"{host}/other/{run.ingest_key}"):
        code, seconds = await _push(url, stack.egress_flv)
        assert code != 0, f"{url} was accepted"
        assert seconds < 5, "refused at once, not after streaming"
    (session,) = await stack.gladia_sessions()
    assert session["received_bytes"] == 0, "refused pushes reached the STT"
    assert not listener.finals()

    # The real egress then gets through; another publisher meanwhile is refused too.
    await finals_after(listener, 2, timeout=30, what="finals from the egress")
    code, _ = await _push(f"{host}/live/{run.ingest_key[:-1]}x", stack.egress_flv)
    assert code != 0
    await finals_after(listener, 4, timeout=30, what="more finals from the egress")
    egresses = await stack.egresses()
    assert len(egresses) == 1 and egresses[0].pushes == 1, "the egress was never disturbed"
    await stop_run(owner_api, slug)
    await stopped(listener, run_id)
    await assert_nothing_lost_or_duplicated(stack, listener, video_session.pk)


async def test_a_second_delivery_of_the_run_task_leaves_the_running_run_alone(
    server_mode: Stack, owner, member, owner_api, video_session, watch
):
    from transcription.tasks import run_ingest

    stack = server_mode
    slug = video_session.slug
    await join_session(video_session, owner)
    listener = await watch(member, slug)
    run_id = await start_server_run(owner_api, slug)
    await finals_after(listener, 2, timeout=30, what="finals")
    first = await run_row(run_id)

    await database_sync_to_async(run_ingest.delay)(run_id)
    delivered_after = len(listener.finals())
    await wait_until(
        lambda: len(listener.finals()) >= delivered_after + 3 or listener.has_status("STOPPED"),
        timeout=15,
        what="more finals, or the run's end",
    )

    run = await run_row(run_id)
    assert run.status == S.ACTIVE
    assert run.control_channel == first.control_channel, "the running runner keeps the run"
    assert len(await stack.gladia_sessions()) == 1
    await stop_run(owner_api, slug)
    await stopped(listener, run_id)
    await assert_nothing_lost_or_duplicated(stack, listener, video_session.pk)
