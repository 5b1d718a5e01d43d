"""A page that (re)connects during a live run cannot miss a final that was broadcast just
before it joined and stored just after it read ``history``: a second ``history`` brings it."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from sessions_app.services import session_join
from tests.transcription.conftest import Client
from transcription.live import broadcast
from transcription.models import TranscriptionRun, TranscriptionUsage, TranscriptSegment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

S = TranscriptionRun.Status


@database_sync_to_async
def _run(session: Any, status: str) -> TranscriptionRun:
    run = TranscriptionRun.objects.create(session=session, provider="local", status=status)
    TranscriptionUsage.objects.create(session=session, run=run, provider="local")
    return run


@database_sync_to_async
def _store(session: Any, run: TranscriptionRun, utterance_id: str) -> None:
    TranscriptSegment.objects.create(
        session=session,
        run=run,
        utterance_id=utterance_id,
        text=f"words of {utterance_id}",
        start_offset=1.0,
        end_offset=2.0,
    )


def _histories(client: Client) -> list[list[str]]:
    return [
        [s["utterance_id"] for s in m["segments"]]
        for m in client.messages
        if m.get("type") == "history"
    ]


async def test_a_final_stored_after_the_history_read_comes_in_a_second_history(
    owner: Any, video_session: Any
) -> None:
    await database_sync_to_async(session_join)(session=video_session, user=owner)
    run = await _run(video_session, S.ACTIVE)
    await _store(video_session, run, "before")
    page = Client(owner, video_session.slug)
    await page.connect()
    await page.until(lambda m: m.get("type") == "transcription_status")
    # Broadcast before this page joined (it never heard it), stored only now.
    await _store(video_session, run, "in-flight")
    # Heard live after joining, and stored: not sent again.
    payload = {
        "type": "transcript",
        "utterance_id": "heard",
        "text": "heard live",
        "is_final": True,
        "speaker_identity": None,
        "speaker_name": None,
        "start": 3.0,
        "end": 4.0,
        "language": "en",
    }
    await broadcast.send_transcript(video_session.pk, payload)
    await page.until(lambda m: m.get("utterance_id") == "heard")
    await _store(video_session, run, "heard")
    second = await page.until(
        lambda m: m.get("type") == "history" and len(_histories(page)) == 2, timeout=5
    )
    assert [s["utterance_id"] for s in second["segments"]] == ["in-flight"]
    assert _histories(page) == [["before"], ["in-flight"]]
    await page.disconnect()


async def test_no_second_history_when_no_run_is_live(owner: Any, video_session: Any) -> None:
    await database_sync_to_async(session_join)(session=video_session, user=owner)
    run = await _run(video_session, S.STOPPED)
    await _store(video_session, run, "before")
    page = Client(owner, video_session.slug)
    await page.connect()
    await page.until(lambda m: m.get("type") == "transcription_status")
    await _store(video_session, run, "later")
    assert await page.comm.receive_nothing(timeout=2.5)
    assert _histories(page) == [["before"]]
    await page.disconnect()
