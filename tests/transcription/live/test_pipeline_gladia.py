"""The run pipeline with Gladia as its provider, against the protocol-faithful fake server.

The fake transcribes by audio duration: each second of audio it has received becomes one
utterance (two partials, then the final), and ``stop_recording`` finalises the rest. The client
prefixes Gladia's utterance ids with the Gladia session id
(``transcription/live/stt/gladia.py``), so what the fake says it sent maps one to one onto
stored ``utterance_id`` values.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async

from sessions_app.services import session_join
from tests.fakes.gladia import FakeGladia
from tests.transcription.conftest import Client, frames, speech_pcm
from transcription.live import runner
from transcription.live.stt.gladia import AUTH_MESSAGE, RATE_LIMIT_MESSAGE
from transcription.models import TranscriptionRun, TranscriptionUsage, TranscriptSegment
from transcription.services import run_start, run_stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

KEY = "fake-gladia-key"
SCRIPT = ["it was the best of times", "it was the worst of times", "it was the age of wisdom"]


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeGladia]:
    async with FakeGladia(api_key=KEY, script=SCRIPT) as server:
        yield server


@pytest.fixture
def gladia(settings, embedded_runner, fake):
    settings.STT_PROVIDER = "gladia"
    settings.GLADIA_API_KEY = KEY
    settings.GLADIA_API_URL = fake.api_url
    settings.TRANSCRIPTION_DRAIN_SECONDS = 5.0
    return fake


def _is_status(*statuses: str):
    return lambda m: m.get("type") == "transcription_status" and m["status"] in statuses


async def _connected(user, session) -> Client:
    client = Client(user, session.slug)
    await client.connect()
    for _ in range(3):  # connected, history, transcription_status
        await client.next()
    return client


async def _start(owner, session) -> TranscriptionRun:
    runner.bind_loop(asyncio.get_running_loop())
    await database_sync_to_async(session_join)(session=session, user=owner)
    return await database_sync_to_async(run_start)(session=session, by=owner)


async def _speak(client: Client, seconds: float) -> None:
    """Real-time speech from ``client``: 40 ms frames, five every 200 ms."""
    for i, frame in enumerate(frames(speech_pcm(seconds=seconds))):
        await client.comm.send_to(bytes_data=frame)
        if i % 5 == 4:
            await asyncio.sleep(0.2)


async def _stop(run: TranscriptionRun, listener: Client) -> dict[str, Any]:
    await database_sync_to_async(run_stop)(run=run)
    return await listener.until(_is_status("STOPPED", "FAILED"), timeout=15)


def _fake_finals(fake: FakeGladia) -> dict[str, str]:
    """Every final the fake sent, keyed the way the client names utterances."""
    sent = [
        (f"{s.id}:{d['id']}", d["utterance"]["text"]) for s in fake.session_list for d in s.finals
    ]
    assert len({uid for uid, _ in sent}) == len(sent), "the fake never re-uses an utterance id"
    return dict(sent)


@database_sync_to_async
def _stored(session) -> list[TranscriptSegment]:
    return list(TranscriptSegment.objects.filter(session=session).order_by("start_offset"))


def _live_finals(client: Client) -> Counter[str]:
    return Counter(
        m["utterance_id"]
        for m in client.messages
        if m.get("type") == "transcript" and m["is_final"]
    )


async def _assert_every_final_stored_once(fake, session, run, listener) -> list[TranscriptSegment]:
    sent = _fake_finals(fake)
    assert len(sent) >= 3, f"the fake sent too few finals to prove anything: {sent}"
    stored = await _stored(session)
    assert {s.utterance_id: s.text for s in stored} == sent, "each final stored, none lost"
    assert len(stored) == len(sent)
    live = _live_finals(listener)
    assert set(live) == set(sent)
    assert max(live.values()) == 1, f"a final was broadcast twice: {live}"
    starts = [s.start_offset for s in stored]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(s.run_id == run.pk for s in stored)
    usage = await database_sync_to_async(TranscriptionUsage.objects.get)(run=run)
    assert usage.finalized
    assert usage.final_count == len(sent)
    return stored


# --- the happy path ---------------------------------------------------------------------------


async def test_gladia_finals_are_broadcast_attributed_and_stored_exactly_once(
    gladia, owner, member, video_session
):
    listener = await _connected(member, video_session)
    speaker = await _connected(owner, video_session)
    run = await _start(owner, video_session)
    await listener.until(_is_status("ACTIVE"))
    await speaker.until(_is_status("ACTIVE"))

    await _speak(speaker, 3.0)
    stopped = await _stop(run, listener)

    assert stopped["status"] == "STOPPED", stopped
    assert stopped["provider"] == "gladia"
    stored = await _assert_every_final_stored_once(gladia, video_session, run, listener)
    assert stored[0].text == SCRIPT[0]
    assert any(s.speaker_identity == owner.identity for s in stored), "speech was attributed"
    partials = [m for m in listener.messages if m.get("type") == "transcript" and not m["is_final"]]
    assert partials, "partials reach the clients"
    assert [s.stop_received for s in gladia.session_list] == [True]
    usage = await database_sync_to_async(TranscriptionUsage.objects.get)(run=run)
    assert usage.reconnect_count == 0
    assert usage.provider == "gladia"
    for client in (listener, speaker):
        await client.disconnect()


async def test_finals_the_provider_repeats_are_stored_and_broadcast_once(
    settings, embedded_runner, owner, member, video_session
):
    async with FakeGladia(api_key=KEY, script=SCRIPT, repeat_finals=True) as fake:
        settings.STT_PROVIDER = "gladia"
        settings.GLADIA_API_KEY = KEY
        settings.GLADIA_API_URL = fake.api_url
        listener = await _connected(member, video_session)
        run = await _start(owner, video_session)
        await listener.until(_is_status("ACTIVE"))

        await asyncio.sleep(3.2)  # the mixer streams (silent) audio: the fake makes 3 finals
        stopped = await _stop(run, listener)

        assert stopped["status"] == "STOPPED", stopped
        await _assert_every_final_stored_once(fake, video_session, run, listener)
        await listener.disconnect()


# --- a dropped socket -------------------------------------------------------------------------


@pytest.mark.parametrize("code", [None, 1011], ids=["tcp_abort", "close_1011"])
async def test_a_dropped_socket_reconnects_without_losing_or_doubling_finals(
    gladia, owner, member, video_session, code
):
    gladia.fault(after_seconds=1.5, code=code)
    listener = await _connected(member, video_session)
    speaker = await _connected(owner, video_session)
    run = await _start(owner, video_session)
    await listener.until(_is_status("ACTIVE"))
    await speaker.until(_is_status("ACTIVE"))

    await _speak(speaker, 4.0)
    stopped = await _stop(run, listener)

    assert stopped["status"] == "STOPPED", stopped
    assert gladia.pending_faults == 0, "the fault fired"
    session = gladia.session_list[0]
    assert session.connections >= 2, "the client reconnected to the same Gladia session"
    await _assert_every_final_stored_once(gladia, video_session, run, listener)
    usage = await database_sync_to_async(TranscriptionUsage.objects.get)(run=run)
    assert usage.reconnect_count >= 1
    for client in (listener, speaker):
        await client.disconnect()


async def test_a_session_gladia_ends_early_is_replaced_and_finals_continue(
    gladia, owner, member, video_session
):
    gladia.fault(after_seconds=1.5, code=4001)  # 4xxx: this Gladia session is over
    listener = await _connected(member, video_session)
    run = await _start(owner, video_session)
    await listener.until(_is_status("ACTIVE"))

    await asyncio.sleep(3.5)
    stopped = await _stop(run, listener)

    assert stopped["status"] == "STOPPED", stopped
    assert len(gladia.session_list) == 2, "a new Gladia session took over"
    await _assert_every_final_stored_once(gladia, video_session, run, listener)
    usage = await database_sync_to_async(TranscriptionUsage.objects.get)(run=run)
    assert usage.reconnect_count >= 1
    await listener.disconnect()


# --- failures the user must see ---------------------------------------------------------------


async def _failed_run(owner, member, session) -> tuple[dict[str, Any], TranscriptionRun]:
    listener = await _connected(member, session)
    run = await _start(owner, session)
    status = await listener.until(_is_status("ACTIVE", "STOPPED", "FAILED"), timeout=10)
    await listener.disconnect()
    run = await database_sync_to_async(TranscriptionRun.objects.get)(pk=run.pk)
    return status, run


async def _assert_failed_cleanly(run: TranscriptionRun, session) -> None:
    assert run.ended_at is not None
    usage = await database_sync_to_async(TranscriptionUsage.objects.get)(run=run)
    assert usage.finalized
    assert usage.billed_minutes == 0
    assert await _stored(session) == []


async def test_a_rejected_api_key_fails_the_run_with_a_visible_auth_error(
    gladia, settings, owner, member, video_session
):
    settings.GLADIA_API_KEY = "not-the-key"

    status, run = await _failed_run(owner, member, video_session)

    assert status["status"] == "FAILED"
    assert status["error_code"] == "auth"
    assert status["error"] == AUTH_MESSAGE
    assert (run.status, run.error_code, run.error) == ("FAILED", "auth", AUTH_MESSAGE)
    assert gladia.init_requests == 1, "a bad key is not retried"
    assert gladia.session_list == []
    await _assert_failed_cleanly(run, video_session)


async def test_a_concurrency_limit_fails_the_run_with_a_visible_rate_limited_error(
    settings, embedded_runner, owner, member, video_session
):
    async with FakeGladia(api_key=KEY, max_sessions=0) as fake:
        settings.STT_PROVIDER = "gladia"
        settings.GLADIA_API_KEY = KEY
        settings.GLADIA_API_URL = fake.api_url

        status, run = await _failed_run(owner, member, video_session)

    assert status["status"] == "FAILED"
    assert status["error_code"] == "rate_limited"
    assert status["error"] == RATE_LIMIT_MESSAGE
    assert (run.status, run.error_code) == ("FAILED", "rate_limited")
    await _assert_failed_cleanly(run, video_session)


async def test_an_unreachable_gladia_fails_the_run_with_a_visible_error(
    settings, embedded_runner, owner, member, video_session
):
    async with FakeGladia(api_key=KEY) as fake:
        url = fake.api_url  # a port that is closed once the fake has stopped
    settings.STT_PROVIDER = "gladia"
    settings.GLADIA_API_KEY = KEY
    settings.GLADIA_API_URL = url

    status, run = await _failed_run(owner, member, video_session)

    assert status["status"] == "FAILED"
    assert status["error_code"] == "provider"
    assert status["error"]
    await _assert_failed_cleanly(run, video_session)


async def test_a_missing_api_key_fails_the_run_instead_of_leaving_it_starting(
    gladia, settings, owner, member, video_session
):
    settings.GLADIA_API_KEY = ""

    status, run = await _failed_run(owner, member, video_session)

    assert status["status"] == "FAILED", status
    assert status["error"]
    assert run.status == "FAILED"
    await _assert_failed_cleanly(run, video_session)
