"""Distributed mode: the run executes in a real Celery worker on the ``ingest`` queue, and audio
and events travel between the in-process consumers and the worker over real Redis."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from rooms.celery import app as celery_app
from sessions_app.services import session_join
from tests.live import ROOT, VENV_BIN, child_env, child_process, free_port, reset_broker_pools
from tests.transcription.conftest import Client, frames, speech_pcm
from transcription.models import TranscriptionRun, TranscriptSegment
from transcription.services import run_start, run_stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def redis_url(settings, tmp_path):
    """The test Redis (REDIS_URL, as in CI), or a private redis-server started here."""
    if settings.REDIS_URL:
        yield settings.REDIS_URL
        return
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        time.sleep(0.3)
        settings.REDIS_URL = url
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "rooms.layers.PubSubChannelLayer",
                "CONFIG": {"hosts": [{"address": url, "max_connections": 200}]},
            }
        }
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(params=["prefork", "threads"])
def celery_worker(request, settings, redis_url, tmp_path):
    """A real ``celery worker`` for the ingest queue, and this process sending to it: a prefork
    pool (a process per run) and a thread pool (the runs of the worker on one shared loop,
    ``RunHost``), as ``make up`` runs it."""
    settings.TRANSCRIPTION_RUNNER = "celery"
    previous = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = redis_url
    env = child_env(
        REDIS_URL=redis_url,
        STT_PROVIDER="local",
        TRANSCRIPTION_RUNNER="celery",
        TRANSCRIPTION_HEARTBEAT_SECONDS="0.5",
    )
    log = Path(ROOT / "artifacts" / f"celery-ingest-worker-{request.param}.log")
    args = [
        str(VENV_BIN / "celery"),
        "-A",
        "rooms",
        "worker",
        "-Q",
        "ingest",
        "-P",
        request.param,
        "-c",
        "2",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        "info",
    ]
    with child_process(args, env=env, log=log) as worker:
        yield worker
    celery_app.conf.task_always_eager, celery_app.conf.broker_url = previous
    reset_broker_pools()


async def test_run_executes_in_a_celery_ingest_worker_over_redis(
    celery_worker, owner, member, video_session
):
    await database_sync_to_async(session_join)(session=video_session, user=owner)
    speaker, listener = Client(owner, video_session.slug), Client(member, video_session.slug)
    await speaker.connect()
    await listener.connect()
    run = await database_sync_to_async(run_start)(session=video_session, by=owner)
    active = await listener.until(
        lambda m: m.get("type") == "transcription_status" and m["status"] == "ACTIVE", timeout=60
    )
    assert active["run_id"] == run.pk
    await speaker.until(
        lambda m: m.get("type") == "transcription_status" and m["status"] == "ACTIVE"
    )

    for i, frame in enumerate(frames(speech_pcm(seconds=6.0))):
        await speaker.comm.send_to(bytes_data=frame)
        if i % 5 == 4:
            await asyncio.sleep(0.2)
    final = await listener.until(
        lambda m: m.get("type") == "transcript" and m["is_final"], timeout=30
    )
    assert final["speaker_identity"] == owner.identity

    await database_sync_to_async(run_stop)(run=run)
    await listener.until(
        lambda m: m.get("type") == "transcription_status" and m["status"] == "STOPPED", timeout=30
    )
    run = await database_sync_to_async(TranscriptionRun.objects.get)(pk=run.pk)
    assert run.control_channel, "the worker's channel was recorded"
    live = {
        m["utterance_id"]
        for m in listener.messages
        if m.get("type") == "transcript" and m["is_final"]
    }
    stored = await database_sync_to_async(
        lambda: set(
            TranscriptSegment.objects.filter(run=run).values_list("utterance_id", flat=True)
        )
    )()
    assert stored == live
    await speaker.disconnect()
    await listener.disconnect()


@pytest.mark.parametrize("celery_worker", ["threads"], indirect=True)
async def test_a_thread_pool_worker_carries_two_runs_on_one_loop_and_hands_both_off_on_sigterm(
    celery_worker, owner, member, video_session
):
    """Two sessions' runs in one worker process: both transcribe; a warm shutdown (SIGTERM)
    hands both off (STARTING, for the next worker) and the worker exits in seconds."""
    from sessions_app.models import VideoSession

    other = await database_sync_to_async(VideoSession.objects.create)(
        space=video_session.space, created_by=owner, title="second"
    )
    runs, listeners, speakers = [], [], []
    for session in (video_session, other):
        await database_sync_to_async(session_join)(session=session, user=owner)
        speaker, listener = Client(owner, session.slug), Client(member, session.slug)
        await speaker.connect()
        await listener.connect()
        runs.append(await database_sync_to_async(run_start)(session=session, by=owner))
        speakers.append(speaker)
        listeners.append(listener)
    for client in speakers + listeners:
        await client.until(
            lambda m: m.get("type") == "transcription_status" and m["status"] == "ACTIVE",
            timeout=60,
        )
    pcm = frames(speech_pcm(seconds=6.0))
    for i, frame in enumerate(pcm):
        for speaker in speakers:
            await speaker.comm.send_to(bytes_data=frame)
        if i % 5 == 4:
            await asyncio.sleep(0.2)
    for listener in listeners:
        final = await listener.until(
            lambda m: m.get("type") == "transcript" and m["is_final"], timeout=30
        )
        assert final["speaker_identity"] == owner.identity

    started = time.monotonic()
    celery_worker.terminate()  # SIGTERM: Celery's warm shutdown
    celery_worker.wait(timeout=30)
    assert time.monotonic() - started < 25, "the runs handed off instead of running on"
    for run in runs:
        row = await database_sync_to_async(TranscriptionRun.objects.get)(pk=run.pk)
        assert row.status == TranscriptionRun.Status.STARTING, row.status
    stored = await database_sync_to_async(
        lambda: {
            run_id: set(
                TranscriptSegment.objects.filter(run_id=run_id).values_list(
                    "utterance_id", flat=True
                )
            )
            for run_id in [r.pk for r in runs]
        }
    )()
    for run, listener in zip(runs, listeners, strict=True):
        live = {
            m["utterance_id"]
            for m in listener.messages
            if m.get("type") == "transcript" and m["is_final"]
        }
        assert live and live <= stored[run.pk], "every final seen live was stored"
    for client in speakers + listeners:
        await client.disconnect()
