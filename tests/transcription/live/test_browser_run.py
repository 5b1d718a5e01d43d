"""Browser mode end to end through the real consumer, channel layer, pipeline and local engine."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from sessions_app.services import session_end, session_join
from tests.transcription.conftest import Client, frames, speech_pcm
from transcription.live import runner
from transcription.models import TranscriptionRun, TranscriptionUsage, TranscriptSegment
from transcription.services import run_start, run_stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _send_realtime(client: Client, pcm: bytes) -> None:
    for i, frame in enumerate(frames(pcm)):
        await client.comm.send_to(bytes_data=frame)
        if i % 5 == 4:
            await asyncio.sleep(0.2)  # 5 frames of 40 ms: real time


async def test_speech_from_one_participant_reaches_the_other_attributed_and_stored(
    settings, embedded_runner, owner, member, video_session
):
    settings.STT_PROVIDER = "local"
    runner.bind_loop(asyncio.get_running_loop())
    await database_sync_to_async(session_join)(session=video_session, user=owner)
    await database_sync_to_async(session_join)(session=video_session, user=member)
    speaker, listener = Client(owner, video_session.slug), Client(member, video_session.slug)
    await speaker.connect()
    await listener.connect()
    for client in (speaker, listener):
        assert (await client.next())["type"] == "connected"
        history = await client.next()
        assert history == {"type": "history", "segments": []}
        assert (await client.next())["status"] == "NONE"

    run = await database_sync_to_async(run_start)(session=video_session, by=owner)
    again = await database_sync_to_async(run_start)(session=video_session, by=member)
    assert again.pk == run.pk, "starting twice must not make two runs"
    await listener.until(
        lambda m: m.get("type") == "transcription_status" and m["status"] == "ACTIVE"
    )
    await speaker.until(
        lambda m: m.get("type") == "transcription_status" and m["status"] == "ACTIVE"
    )

    await _send_realtime(speaker, speech_pcm(seconds=9.0))
    final = await listener.until(
        lambda m: m.get("type") == "transcript" and m["is_final"], timeout=20
    )
    assert final["speaker_identity"] == owner.identity
    assert final["speaker_name"] == owner.name

    await database_sync_to_async(run_stop)(run=run)
    await listener.until(
        lambda m: m.get("type") == "transcription_status" and m["status"] == "STOPPED", timeout=30
    )

    live_finals = {
        m["utterance_id"]: m
        for m in listener.messages
        if m.get("type") == "transcript" and m["is_final"]
    }
    partials = [m for m in listener.messages if m.get("type") == "transcript" and not m["is_final"]]
    assert partials, "partials are broadcast while someone speaks"
    stored = await database_sync_to_async(
        lambda: list(TranscriptSegment.objects.filter(session=video_session))
    )()
    assert {s.utterance_id for s in stored} == set(live_finals)
    text = " ".join(s.text for s in stored)
    assert sum(word in text.split() for word in ("best", "times", "worst", "age", "wisdom")) >= 3
    assert all(s.speaker_identity == owner.identity for s in stored)
    assert all(s.participant_id is not None for s in stored)

    usage = await database_sync_to_async(TranscriptionUsage.objects.get)(run=run)
    assert usage.finalized
    assert 9.0 <= usage.duration_seconds <= 30.0
    assert usage.billed_minutes == 1
    assert usage.final_count == len(live_finals)

    # A late joiner gets every final in `history`, none twice.
    late = Client(member, video_session.slug)
    await late.connect()
    await late.next()
    history = await late.next()
    assert [s["utterance_id"] for s in history["segments"]] == [
        s.utterance_id for s in sorted(stored, key=lambda s: s.start_offset)
    ]
    for client in (speaker, listener, late):
        await client.disconnect()


async def test_ending_the_session_stops_the_run_and_closes_clients(
    settings, embedded_runner, owner, member, video_session
):
    settings.STT_PROVIDER = "local"
    runner.bind_loop(asyncio.get_running_loop())
    await database_sync_to_async(session_join)(session=video_session, user=owner)
    client = Client(member, video_session.slug)
    await client.connect()
    run = await database_sync_to_async(run_start)(session=video_session, by=owner)
    await client.until(
        lambda m: m.get("type") == "transcription_status" and m["status"] == "ACTIVE"
    )
    await database_sync_to_async(session_end)(session=video_session, by=owner)
    await client.until(lambda m: m.get("type") == "session_ended")
    assert await client.close_code() == 4004
    for _ in range(100):
        run = await database_sync_to_async(TranscriptionRun.objects.get)(pk=run.pk)
        if run.is_finished:
            break
        await asyncio.sleep(0.1)
    assert run.status == "STOPPED"
    usage = await database_sync_to_async(TranscriptionUsage.objects.get)(run=run)
    assert usage.finalized
