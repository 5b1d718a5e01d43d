"""The product's central promise: however many people send audio, a session bills ONE stream."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from channels.db import database_sync_to_async

from sessions_app.services import session_join
from spaces.models import SpaceMember
from tests.factories import UserFactory
from tests.transcription.conftest import Client
from transcription.live import runner
from transcription.models import TranscriptionRun, TranscriptionUsage
from transcription.services import run_start, run_stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SENDERS = 10
SECONDS = 4.0


def _noise_frame(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(640) * 3000).astype("<i2").tobytes()


async def test_ten_audio_senders_bill_one_stream_not_ten(
    settings, embedded_runner, owner, space, video_session
):
    settings.STT_PROVIDER = "local"
    runner.bind_loop(asyncio.get_running_loop())

    def make_members() -> list:
        users = [owner]
        for _ in range(SENDERS - 1):
            user = UserFactory()
            SpaceMember.objects.create(space=space, user=user)
            users.append(user)
        for user in users:
            session_join(session=video_session, user=user)
        return users

    users = await database_sync_to_async(make_members)()
    clients = [Client(user, video_session.slug) for user in users]
    for client in clients:
        await client.connect()
    run = await database_sync_to_async(run_start)(session=video_session, by=owner)
    for client in clients:
        await client.until(
            lambda m: m.get("type") == "transcription_status" and m["status"] == "ACTIVE"
        )

    started = time.monotonic()
    frame_count = int(SECONDS / 0.04)
    for i in range(frame_count):
        for n, client in enumerate(clients):
            await client.comm.send_to(bytes_data=_noise_frame(i * SENDERS + n))
        await asyncio.sleep(0.04)
    await database_sync_to_async(run_stop)(run=run)
    await clients[0].until(
        lambda m: m.get("type") == "transcription_status" and m["status"] == "STOPPED", timeout=30
    )
    wall = time.monotonic() - started

    usage = await database_sync_to_async(TranscriptionUsage.objects.get)(run=run)
    run = await database_sync_to_async(TranscriptionRun.objects.get)(pk=run.pk)
    sent_audio_seconds = SENDERS * frame_count * 0.04
    # Metered audio is the run's own clock (one mixed stream), not the sum of the senders.
    assert usage.duration_seconds <= wall + 1.0
    assert usage.duration_seconds < sent_audio_seconds / 5
    assert usage.audio_bytes == pytest.approx(usage.duration_seconds * 32000, rel=0.01)
    assert usage.billed_minutes == 1
    assert usage.total_cost == settings.TRANSCRIPTION_COST_PER_MINUTE
    for client in clients:
        await client.disconnect()
