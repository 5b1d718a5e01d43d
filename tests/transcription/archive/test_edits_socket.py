"""Corrections reach open pages live: the finished page's edits socket and the live sidebar's
transcript socket (issue 14 §3). Through the real ASGI application and channel layer."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from sessions_app.models import VideoSession
from sessions_app.services import participant_upsert
from tests.live import session_socket
from tests.transcription.conftest import Client
from tests.transcription.transcripts import store_transcript
from transcription.archive.edits import segment_edit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@database_sync_to_async
def _stored(session: VideoSession, owner, member, *, ended: bool) -> None:
    participant_upsert(session=session, user=member)
    if ended:
        session.status = VideoSession.Status.ENDED
        session.save(update_fields=["status"])
    store_transcript(session, [(1.0, 2.0, owner.identity, owner.name, "the first words")])


@database_sync_to_async
def _edit(session: VideoSession, by, text: str) -> None:
    segment_edit(session=session, utterance_id="u0", by=by, base_revision=0, text=text)


async def _next(comm, timeout: float = 3.0) -> dict:
    raw = await comm.receive_output(timeout)
    if raw["type"] == "websocket.close":
        return {"type": "__closed__", "code": raw.get("code")}
    return json.loads(raw["text"])


async def test_the_finished_page_socket_hears_a_correction(owner, member, video_session):
    await _stored(video_session, owner, member, ended=True)
    comm = session_socket(owner, f"/ws/sessions/{video_session.slug}/edits/")
    connected, _ = await comm.connect()
    assert connected
    await comm.send_to(text_data='{"type": "ping"}')
    assert await _next(comm) == {"type": "pong"}

    await _edit(video_session, member, "the very first words")

    update = await _next(comm)
    assert update["type"] == "segment_updated"
    assert (update["utterance_id"], update["text"], update["revision"]) == (
        "u0",
        "the very first words",
        1,
    )
    await comm.disconnect()


async def test_the_live_sidebar_socket_hears_a_correction(owner, member, video_session):
    await _stored(video_session, owner, member, ended=False)
    client = Client(owner, video_session.slug)
    await client.connect()
    assert [(await client.next())["type"] for _ in range(3)] == [
        "connected",
        "history",
        "transcription_status",
    ]
    await _edit(video_session, member, "corrected live")
    update = await client.until(lambda m: m["type"] == "segment_updated", timeout=5)
    assert update["text"] == "corrected live" and update["revision"] == 1
    await client.disconnect()


async def test_an_outsider_is_refused_on_the_edits_socket(outsider, video_session):
    comm = session_socket(outsider, f"/ws/sessions/{video_session.slug}/edits/")
    await comm.connect()
    assert await _next(comm) == {"type": "__closed__", "code": 4003}


async def test_no_cookie_is_refused_on_the_edits_socket(video_session):
    comm = session_socket(None, f"/ws/sessions/{video_session.slug}/edits/")
    await comm.connect()
    assert await _next(comm) == {"type": "__closed__", "code": 4001}


@pytest.mark.parametrize(
    "frame",
    [
        {"text_data": "hello"},
        {"text_data": '{"type": "ping", "x": 1}'},
        {"text_data": '{"type": "subscribe"}'},
        {"text_data": "[" * 5000},
        {"bytes_data": b"\x00\x01"},
    ],
)
async def test_anything_but_a_ping_closes_the_edits_socket_with_4002(member, video_session, frame):
    comm = session_socket(member, f"/ws/sessions/{video_session.slug}/edits/")
    connected, _ = await comm.connect()
    assert connected
    await comm.send_to(**frame)
    assert await _next(comm) == {"type": "__closed__", "code": 4002}
