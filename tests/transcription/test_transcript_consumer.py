"""The transcript WebSocket (docs/transcript-protocol.md): who may connect, what bad input gets.

These go through the real ``rooms.asgi.application`` (origin check, cookie auth, routing). Where a
test needs to see what the consumer hands to a run, the run is a row whose ``control_channel`` is
a channel the test itself listens on: exactly what a consumer forwards is then observable.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import jwt
import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from sessions_app.models import VideoSession
from sessions_app.services import session_end
from sessions_app.tokens import (
    TRANSCRIPTION_AUDIENCE,
    TRANSCRIPTION_ISSUER,
    transcription_token_create,
)
from tests.factories import UserFactory, VideoSessionFactory
from tests.transcription.conftest import Client, frames, speech_pcm
from transcription.live import runner
from transcription.models import TranscriptionRun, TranscriptionUsage, TranscriptSegment
from transcription.services import run_start, run_stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

S = TranscriptionRun.Status
FRAME = b"\x01\x00" * 640  # 40 ms of PCM16 at 16 kHz: 1,280 bytes


# --- helpers ------------------------------------------------------------------------------


async def _join(client: Client) -> list[dict[str, Any]]:
    """Connect and read the three opening messages: connected, history, transcription_status."""
    await client.connect()
    opening = [await client.next() for _ in range(3)]
    assert [m["type"] for m in opening] == ["connected", "history", "transcription_status"]
    return opening


async def _refused(client: Client) -> int:
    """Connect and return the close code; fail if anything but the close arrives first."""
    await client.connect()
    first = await client.next()
    assert first["type"] == "__closed__", f"expected only a close, got {first}"
    assert await client.comm.receive_nothing(timeout=0.2), "nothing may follow the close"
    return first["code"]


async def _still_healthy(client: Client) -> None:
    await client.comm.send_to(text_data=json.dumps({"type": "ping"}))
    assert await client.next() == {"type": "pong"}


def _token(claims: dict[str, Any], secret: str | None = None) -> str:
    from django.conf import settings

    now = int(time.time())
    payload = {
        "iss": TRANSCRIPTION_ISSUER,
        "aud": TRANSCRIPTION_AUDIENCE,
        "iat": now,
        "exp": now + 3600,
        **claims,
    }
    return jwt.encode(payload, secret or settings.TRANSCRIPTION_JWT_SECRET, algorithm="HS256")


@database_sync_to_async
def _listened_run(session: VideoSession, channel: str, status: str = S.ACTIVE, mode="BROWSER"):
    """A run row whose control channel is ``channel`` (the test plays the runner)."""
    run = TranscriptionRun.objects.create(
        session=session, mode=mode, provider="local", status=status, control_channel=channel
    )
    TranscriptionUsage.objects.create(session=session, run=run, provider="local")
    return run


async def _run_channel() -> str:
    # Creating the channel subscribes to it (Redis pub/sub drops messages nobody listens for).
    return await get_channel_layer().new_channel("transcription.run.")


async def _receives_nothing(channel: str, timeout: float = 0.3) -> bool:
    try:
        message = await asyncio.wait_for(get_channel_layer().receive(channel), timeout)
    except TimeoutError:
        return True
    raise AssertionError(f"the run was sent {message.get('type')}: {str(message)[:200]}")


@database_sync_to_async
def _stored_segments(session: VideoSession) -> int:
    return TranscriptSegment.objects.filter(session=session).count()


@database_sync_to_async
def _usage(run: TranscriptionRun) -> TranscriptionUsage:
    return TranscriptionUsage.objects.get(run=run)


# --- authentication: 4001 -----------------------------------------------------------------


async def test_no_cookie_and_no_token_is_closed_with_4001(video_session):
    assert await _refused(Client(None, video_session.slug)) == 4001


@pytest.mark.parametrize(
    "kind", ["garbage", "expired", "wrong_secret", "wrong_audience", "no_session", "unsigned"]
)
async def test_an_invalid_token_is_closed_with_4001(member, video_session, kind):
    good = {"sub": member.identity, "sid": video_session.slug}
    now = int(time.time())
    token = {
        "garbage": "not-a-jwt",
        "expired": _token({**good, "iat": now - 7200, "exp": now - 10}),
        "wrong_secret": _token(good, secret="another-secret-of-at-least-32-bytes!!"),
        "wrong_audience": _token({**good, "aud": "rooms.somewhere-else"}),
        "no_session": _token({"sub": member.identity}),
        "unsigned": jwt.encode({**good, "aud": TRANSCRIPTION_AUDIENCE}, None, algorithm="none"),
    }[kind]

    assert await _refused(Client(None, video_session.slug, query=f"token={token}")) == 4001


async def test_a_bad_token_is_refused_even_with_a_signed_in_cookie(member, video_session):
    # A token wins over the cookie: a bad one is not rescued by the session.
    assert await _refused(Client(member, video_session.slug, query="token=not-a-jwt")) == 4001


@pytest.mark.parametrize("identity", ["u-" + "0" * 32, "u-not-hex", "someone"])
async def test_a_token_for_an_unknown_identity_is_closed_with_4001(video_session, identity):
    token = _token({"sub": identity, "sid": video_session.slug})
    assert await _refused(Client(None, video_session.slug, query=f"token={token}")) == 4001


async def test_a_token_of_a_deactivated_user_is_closed_with_4001(member, video_session):
    token = transcription_token_create(session_slug=video_session.slug, identity=member.identity)
    member.is_active = False
    await database_sync_to_async(member.save)(update_fields=["is_active"])

    assert await _refused(Client(None, video_session.slug, query=f"token={token}")) == 4001


async def test_a_token_authenticates_a_member(member, video_session):
    token = transcription_token_create(session_slug=video_session.slug, identity=member.identity)

    connected, history, status = await _join(
        Client(None, video_session.slug, query=f"token={token}")
    )

    captions = connected.pop("captions")
    assert connected == {
        "type": "connected",
        "session": video_session.slug,
        "identity": member.identity,
        "name": member.name,
    }
    assert captions["language"] == ""
    assert history == {"type": "history", "segments": []}
    assert status["status"] == "NONE"


async def test_a_signed_in_cookie_authenticates_a_member(member, video_session):
    client = Client(member, video_session.slug)
    connected, _, _ = await _join(client)
    assert connected["identity"] == member.identity
    await client.disconnect()


async def test_the_token_wins_over_the_cookie(owner, member, video_session):
    token = transcription_token_create(session_slug=video_session.slug, identity=owner.identity)
    client = Client(member, video_session.slug, query=f"token={token}")

    connected, _, _ = await _join(client)

    assert connected["identity"] == owner.identity
    await client.disconnect()


async def test_a_foreign_origin_is_refused_at_the_handshake(member, video_session):
    from rooms.asgi import application

    comm = WebsocketCommunicator(
        application,
        f"/ws/sessions/{video_session.slug}/transcript/",
        headers=[(b"origin", b"https://evil.example"), (b"host", b"127.0.0.1:8000")],
    )
    comm.scope["user"] = member
    connected, _ = await comm.connect()
    assert not connected
    await comm.disconnect()


# --- access: 4003 -------------------------------------------------------------------------


async def test_a_valid_token_for_another_session_is_closed_with_4003(
    member, video_session, space, owner
):
    other = await database_sync_to_async(VideoSessionFactory)(space=space, created_by=owner)
    token = transcription_token_create(session_slug=other.slug, identity=member.identity)

    assert await _refused(Client(None, video_session.slug, query=f"token={token}")) == 4003


async def test_an_outsider_is_closed_with_4003_and_receives_nothing_else(outsider, video_session):
    await database_sync_to_async(TranscriptSegment.objects.create)(
        session=video_session,
        run=await _listened_run(video_session, "transcription.run.x!y", S.STOPPED),
        utterance_id="secret",
        text="the owner's secret plans",
        start_offset=1.0,
        end_offset=2.0,
    )

    assert await _refused(Client(outsider, video_session.slug)) == 4003


async def test_an_outsider_with_a_validly_signed_token_is_closed_with_4003(outsider, video_session):
    token = transcription_token_create(session_slug=video_session.slug, identity=outsider.identity)
    assert await _refused(Client(None, video_session.slug, query=f"token={token}")) == 4003


async def test_an_unknown_session_is_closed_with_4003(member):
    assert await _refused(Client(member, "no-such-session")) == 4003


async def test_an_unknown_session_named_in_a_valid_token_is_closed_with_4003(member):
    token = transcription_token_create(session_slug="no-such-session", identity=member.identity)
    assert await _refused(Client(None, "no-such-session", query=f"token={token}")) == 4003


async def test_an_outsider_learns_nothing_from_the_status_broadcasts_either(
    outsider, member, video_session
):
    insider, intruder = Client(member, video_session.slug), Client(outsider, video_session.slug)
    await _join(insider)
    assert await _refused(intruder) == 4003

    run = await _listened_run(video_session, await _run_channel())
    from transcription.live import broadcast

    await broadcast.send_status(video_session.pk, run)

    assert (await insider.next())["run_id"] == run.pk
    assert await intruder.comm.receive_nothing(timeout=0.3)
    await insider.disconnect()
    await intruder.disconnect()


# --- ended sessions: 4004 -----------------------------------------------------------------


async def test_an_ended_session_sends_session_ended_then_closes_4004(owner, member, video_session):
    await database_sync_to_async(session_end)(session=video_session, by=owner)
    client = Client(member, video_session.slug)
    await client.connect()

    assert await client.next() == {"type": "session_ended"}
    assert await client.next() == {"type": "__closed__", "code": 4004}


async def test_an_ended_session_refuses_a_token_holder_too(owner, member, video_session):
    token = transcription_token_create(session_slug=video_session.slug, identity=member.identity)
    await database_sync_to_async(session_end)(session=video_session, by=owner)
    client = Client(None, video_session.slug, query=f"token={token}")
    await client.connect()

    assert await client.next() == {"type": "session_ended"}
    assert await client.next() == {"type": "__closed__", "code": 4004}


async def test_connected_clients_are_closed_4004_when_the_host_ends_the_session(
    owner, member, video_session
):
    clients = [Client(member, video_session.slug), Client(owner, video_session.slug)]
    for client in clients:
        await _join(client)

    await database_sync_to_async(session_end)(session=video_session, by=owner)

    for client in clients:
        assert await client.next() == {"type": "session_ended"}
        assert await client.next() == {"type": "__closed__", "code": 4004}


# --- audio frames: 4009, 4008 -------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 2, 98, 99, 101, 1281, 65_535, 65_538, 65_536 + 1280])
async def test_a_frame_of_bad_size_or_odd_length_is_closed_with_4009(member, video_session, size):
    client = Client(member, video_session.slug)
    await _join(client)

    if size == 0:
        # An empty binary frame: channels' communicator cannot send b"", so send the event.
        await client.comm.send_input({"type": "websocket.receive", "bytes": b""})
    else:
        await client.comm.send_to(bytes_data=b"\x00" * size)

    assert await client.close_code() == 4009
    await client.disconnect()


@pytest.mark.parametrize("size", [100, 1280, 3200, 65_536])
async def test_frames_of_100_bytes_to_64_kib_are_accepted(member, video_session, size):
    client = Client(member, video_session.slug)
    await _join(client)

    await client.comm.send_to(bytes_data=b"\x00" * size)

    await _still_healthy(client)
    await client.disconnect()


async def test_more_than_the_burst_allowance_at_once_is_closed_with_4008(member, video_session):
    client = Client(member, video_session.slug)
    await _join(client)

    for _ in range(110):
        await client.comm.send_to(bytes_data=FRAME)

    assert await client.close_code() == 4008
    await client.disconnect()


async def test_a_bunched_burst_of_two_seconds_of_frames_is_not_a_flood(member, video_session):
    # A page sending 25-40 frames/s can have 2 s of them arrive at once after a stall.
    client = Client(member, video_session.slug)
    await _join(client)

    for _ in range(95):
        await client.comm.send_to(bytes_data=FRAME)

    await _still_healthy(client)
    await client.disconnect()


async def test_a_steady_50_frames_per_second_is_not_a_flood(member, video_session):
    client = Client(member, video_session.slug)
    await _join(client)

    for _ in range(50):
        await client.comm.send_to(bytes_data=FRAME)
    await _still_healthy(client)  # all 50 were taken in
    await asyncio.sleep(1.05)  # the next second starts
    for _ in range(50):
        await client.comm.send_to(bytes_data=FRAME)

    await _still_healthy(client)
    await client.disconnect()


# --- text messages: 4002, ping ------------------------------------------------------------


LONG_IDENTITY = "u-" + "a" * 63  # 65 characters

MALFORMED = {
    "not_json": "this is not json",
    "truncated_json": '{"type": "ping"',
    "json_array": '["ping"]',
    "json_string": '"ping"',
    "json_number": "42",
    "json_null": "null",
    "no_type": "{}",
    "unknown_type": '{"type": "shout"}',
    "type_not_a_string": '{"type": ["ping"]}',
    "speakers_missing": '{"type": "active_speakers"}',
    "speakers_not_a_list": '{"type": "active_speakers", "speakers": "u-abc"}',
    "speakers_a_dict": '{"type": "active_speakers", "speakers": {"u-abc": true}}',
    "51_speakers": json.dumps(
        {"type": "active_speakers", "speakers": [f"u-{i}" for i in range(51)]}
    ),
    "speaker_not_a_string": '{"type": "active_speakers", "speakers": ["u-abc", 7]}',
    "speaker_null": '{"type": "active_speakers", "speakers": [null]}',
    "speaker_empty": '{"type": "active_speakers", "speakers": [""]}',
    "speaker_65_chars": json.dumps({"type": "active_speakers", "speakers": [LONG_IDENTITY]}),
    "text_over_4_kib": json.dumps({"type": "ping", "pad": "x" * 4096}),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
async def test_a_malformed_text_message_is_closed_with_4002(member, video_session, kind):
    client = Client(member, video_session.slug)
    await _join(client)

    await client.comm.send_to(text_data=MALFORMED[kind])

    assert await client.next() == {"type": "__closed__", "code": 4002}
    await client.disconnect()


async def test_text_over_4_kib_of_utf8_is_closed_with_4002(member, video_session):
    # 4 KiB is a size in bytes: 1,400 euro signs are 4,200 bytes in UTF-8 (1,425 characters).
    client = Client(member, video_session.slug)
    await _join(client)
    text = json.dumps({"type": "ping", "pad": "€" * 1400}, ensure_ascii=False)
    assert len(text.encode()) > 4096

    await client.comm.send_to(text_data=text)

    assert await client.next() == {"type": "__closed__", "code": 4002}
    await client.disconnect()


async def test_a_text_message_of_exactly_4_kib_is_accepted(member, video_session):
    client = Client(member, video_session.slug)
    await _join(client)
    text = json.dumps({"type": "ping", "pad": ""})
    text = json.dumps({"type": "ping", "pad": "x" * (4096 - len(text))})
    assert len(text.encode()) == 4096

    await client.comm.send_to(text_data=text)

    assert await client.next() == {"type": "pong"}
    await client.disconnect()


async def test_ping_gets_pong(member, video_session):
    client = Client(member, video_session.slug)
    await _join(client)

    for _ in range(3):
        await _still_healthy(client)
    await client.disconnect()


async def test_50_speakers_of_64_characters_are_accepted(member, video_session):
    client = Client(member, video_session.slug)
    await _join(client)
    speakers = [f"u-{i:062d}" for i in range(50)]
    assert {len(s) for s in speakers} == {64}

    await client.comm.send_to(
        text_data=json.dumps({"type": "active_speakers", "speakers": speakers})
    )
    await client.comm.send_to(text_data=json.dumps({"type": "active_speakers", "speakers": []}))

    await _still_healthy(client)
    await client.disconnect()


# --- what reaches a run -------------------------------------------------------------------


async def test_frames_and_speakers_reach_the_active_browser_run(member, video_session):
    channel = await _run_channel()
    run = await _listened_run(video_session, channel)
    client = Client(member, video_session.slug)
    _, _, status = await _join(client)
    assert (status["status"], status["run_id"], status["mode"]) == ("ACTIVE", run.pk, "BROWSER")

    await client.comm.send_to(bytes_data=FRAME)
    frame = await asyncio.wait_for(get_channel_layer().receive(channel), 2)
    assert frame == {
        "type": "audio.frame",
        "source": member.identity,
        "name": member.name,
        "pcm": FRAME,
    }

    await client.comm.send_to(
        text_data=json.dumps({"type": "active_speakers", "speakers": [member.identity]})
    )
    speakers = await asyncio.wait_for(get_channel_layer().receive(channel), 2)
    assert speakers["type"] == "speakers.active"
    assert speakers["speakers"] == [member.identity]
    assert abs(speakers["at"] - time.time()) < 5

    await client.disconnect()
    leave = await asyncio.wait_for(get_channel_layer().receive(channel), 2)
    assert leave == {"type": "audio.leave", "source": member.identity}


async def test_a_rejected_frame_reaches_no_run_and_stores_nothing(member, video_session):
    channel = await _run_channel()
    run = await _listened_run(video_session, channel)
    before = await _usage(run)
    client = Client(member, video_session.slug)
    await _join(client)

    await client.comm.send_to(bytes_data=b"\x00" * 99)

    assert await client.close_code() == 4009
    assert await _receives_nothing(channel)
    assert await _stored_segments(video_session) == 0
    after = await _usage(run)
    assert (after.audio_bytes, after.audio_chunks) == (before.audio_bytes, before.audio_chunks)
    await client.disconnect()


async def test_frames_queued_behind_a_rejected_frame_reach_no_run(member, video_session):
    # A client closed for a bad frame is gone: what it had already sent must not be mixed in.
    channel = await _run_channel()
    await _listened_run(video_session, channel)
    client = Client(member, video_session.slug)
    await _join(client)

    await client.comm.send_to(bytes_data=b"\x00" * 1281)
    for _ in range(3):
        await client.comm.send_to(bytes_data=FRAME)
    await client.comm.send_to(
        text_data=json.dumps({"type": "active_speakers", "speakers": [member.identity]})
    )

    assert await client.close_code() == 4009
    assert await _receives_nothing(channel)
    await client.disconnect()


async def test_a_flooding_client_is_closed_and_its_excess_frames_reach_no_run(
    member, video_session
):
    channel = await _run_channel()
    await _listened_run(video_session, channel)
    client = Client(member, video_session.slug)
    await _join(client)

    started = time.monotonic()
    for _ in range(160):
        await client.comm.send_to(bytes_data=FRAME)

    assert await client.close_code() == 4008
    refilled = math.ceil((time.monotonic() - started) * 50)
    kinds: list[str] = []
    while True:
        try:
            message = await asyncio.wait_for(get_channel_layer().receive(channel), 0.3)
        except TimeoutError:
            break
        kinds.append(message["type"])
    # The burst allowance (100) plus what refilled (50/s) while the frames were being sent.
    assert 100 <= kinds.count("audio.frame") <= 100 + refilled
    # The closed client's source is taken out of the mix.
    assert kinds[-1] == "audio.leave"
    await client.disconnect()


async def test_other_clients_stay_connected_when_one_is_closed_for_a_bad_frame(
    owner, member, video_session
):
    channel = await _run_channel()
    run = await _listened_run(video_session, channel)
    good, bad = Client(owner, video_session.slug), Client(member, video_session.slug)
    await _join(good)
    await _join(bad)

    await bad.comm.send_to(bytes_data=b"\x00" * 99)
    assert await bad.close_code() == 4009

    await _still_healthy(good)
    await good.comm.send_to(bytes_data=FRAME)
    frame = await asyncio.wait_for(get_channel_layer().receive(channel), 2)
    assert frame["source"] == owner.identity
    from transcription.live import broadcast

    await broadcast.send_status(video_session.pk, run)
    assert (await good.next())["run_id"] == run.pk
    await good.disconnect()
    await bad.disconnect()


async def test_a_bad_frame_does_not_disturb_a_live_run_or_its_other_clients(
    settings, embedded_runner, owner, member, video_session
):
    settings.STT_PROVIDER = "local"
    runner.bind_loop(asyncio.get_running_loop())
    good, bad = Client(owner, video_session.slug), Client(member, video_session.slug)
    await _join(good)
    await _join(bad)
    run = await database_sync_to_async(run_start)(session=video_session, by=owner)
    for client in (good, bad):
        await client.until(
            lambda m: m.get("type") == "transcription_status" and m["status"] == "ACTIVE"
        )

    # Odd-length frames of real speech: the first one closes the client.
    for frame in frames(speech_pcm(seconds=1.0), frame_bytes=1281)[:5]:
        await bad.comm.send_to(bytes_data=frame)
    assert await bad.close_code() == 4009

    await _still_healthy(good)
    get_run = database_sync_to_async(TranscriptionRun.objects.get)
    beat = (await get_run(pk=run.pk)).heartbeat_at
    await asyncio.sleep(settings.TRANSCRIPTION_HEARTBEAT_SECONDS * 2.5)  # the run heartbeats
    live = await get_run(pk=run.pk)
    assert live.status == S.ACTIVE
    assert live.heartbeat_at > beat, "the run is alive, not just not yet marked dead"

    await database_sync_to_async(run_stop)(run=run)
    stopped = await good.until(
        lambda m: m.get("type") == "transcription_status" and m["status"] in ("STOPPED", "FAILED"),
        timeout=20,
    )
    assert stopped["status"] == "STOPPED", stopped
    assert await _stored_segments(video_session) == 0
    await good.disconnect()
    await bad.disconnect()


@pytest.mark.parametrize(
    ("status", "mode"),
    [
        (S.STARTING, "BROWSER"),
        (S.STOPPING, "BROWSER"),
        (S.STOPPED, "BROWSER"),
        (S.ACTIVE, "SERVER"),
    ],
)
async def test_frames_are_dropped_silently_unless_a_browser_run_is_active(
    member, video_session, status, mode
):
    channel = await _run_channel()
    await _listened_run(video_session, channel, status=status, mode=mode)
    client = Client(member, video_session.slug)
    await _join(client)

    for _ in range(5):
        await client.comm.send_to(bytes_data=FRAME)

    await _still_healthy(client)
    assert await _receives_nothing(channel)
    assert await _stored_segments(video_session) == 0
    await client.disconnect()


async def test_frames_with_no_run_at_all_are_dropped_silently(member, video_session):
    client = Client(member, video_session.slug)
    _, _, status = await _join(client)
    assert status["status"] == "NONE"

    for frame in frames(speech_pcm(seconds=0.5)):
        await client.comm.send_to(bytes_data=frame)

    await _still_healthy(client)
    assert await _stored_segments(video_session) == 0
    assert not await database_sync_to_async(TranscriptionRun.objects.exists)()
    await client.disconnect()


async def test_frames_stop_reaching_a_run_once_it_is_no_longer_active(member, video_session):
    channel = await _run_channel()
    run = await _listened_run(video_session, channel)
    client = Client(member, video_session.slug)
    await _join(client)
    await client.comm.send_to(bytes_data=FRAME)
    assert (await asyncio.wait_for(get_channel_layer().receive(channel), 2))[
        "type"
    ] == "audio.frame"

    await database_sync_to_async(TranscriptionRun.objects.filter(pk=run.pk).update)(
        status=S.STOPPING
    )
    run.status = S.STOPPING
    from transcription.live import broadcast

    await broadcast.send_status(video_session.pk, run)
    assert (await client.next())["status"] == "STOPPING"
    await client.comm.send_to(bytes_data=FRAME)

    await _still_healthy(client)
    assert await _receives_nothing(channel)
    await client.disconnect()


# --- history ------------------------------------------------------------------------------


async def test_a_connected_client_gets_the_stored_finals_oldest_first(
    owner, member, video_session, space
):
    run = await _listened_run(video_session, "transcription.run.x!y", S.STOPPED)
    other = await database_sync_to_async(VideoSessionFactory)(space=space, created_by=owner)
    other_run = await _listened_run(other, "transcription.run.x!z", S.STOPPED)

    @database_sync_to_async
    def store() -> None:
        for utterance, text, start in [
            ("u-3", "it was the age of wisdom", 7.25),
            ("u-1", "it was the best of times", 1.0),
            ("u-2", "it was the worst of times", 4.5),
        ]:
            TranscriptSegment.objects.create(
                session=video_session,
                run=run,
                speaker_identity=owner.identity if utterance != "u-2" else "",
                speaker_name=owner.name if utterance != "u-2" else "",
                utterance_id=utterance,
                text=text,
                language="en",
                start_offset=start,
                end_offset=start + 2.0004,
            )
        TranscriptSegment.objects.create(
            session=other,
            run=other_run,
            utterance_id="elsewhere",
            text="another session's words",
            start_offset=0.5,
            end_offset=1.0,
        )

    await store()
    client = Client(member, video_session.slug)

    _, history, status = await _join(client)

    assert history["segments"] == [
        {
            "utterance_id": "u-1",
            "text": "it was the best of times",
            "is_final": True,
            "speaker_identity": owner.identity,
            "speaker_name": owner.name,
            "start": 1.0,
            "end": 3.0,
            "language": "en",
            "confidence": None,
            "words": None,
            "revision": 0,
            "translation": None,
        },
        {
            "utterance_id": "u-2",
            "text": "it was the worst of times",
            "is_final": True,
            "speaker_identity": None,
            "speaker_name": None,
            "start": 4.5,
            "end": 6.5,
            "language": "en",
            "confidence": None,
            "words": None,
            "revision": 0,
            "translation": None,
        },
        {
            "utterance_id": "u-3",
            "text": "it was the age of wisdom",
            "is_final": True,
            "speaker_identity": owner.identity,
            "speaker_name": owner.name,
            "start": 7.25,
            "end": 9.25,
            "language": "en",
            "confidence": None,
            "words": None,
            "revision": 0,
            "translation": None,
        },
    ]
    assert status["status"] == "STOPPED"
    assert status["run_id"] == run.pk
    await client.disconnect()


async def test_a_new_user_of_the_space_gets_history_too(owner, space, video_session):
    from spaces.models import SpaceMember
    from tests.factories import SpaceMemberFactory

    newcomer = await database_sync_to_async(UserFactory)()
    await database_sync_to_async(SpaceMemberFactory)(
        space=space, user=newcomer, role=SpaceMember.Role.MEMBER
    )
    run = await _listened_run(video_session, "transcription.run.x!y", S.STOPPED)
    await database_sync_to_async(TranscriptSegment.objects.create)(
        session=video_session, run=run, utterance_id="u-1", text="hi", start_offset=0, end_offset=1
    )

    _, history, _ = await _join(Client(newcomer, video_session.slug))

    assert [s["utterance_id"] for s in history["segments"]] == ["u-1"]


async def test_history_of_a_session_without_finals_is_empty(member, video_session):
    _, history, _ = await _join(Client(member, video_session.slug))
    assert history == {"type": "history", "segments": []}


# --- who is in the session: `participants` ------------------------------------------------------


def _present(message: dict[str, Any]) -> dict[str, bool]:
    return {p["identity"]: p["present"] for p in message["participants"]}


def _participants(client: Client, timeout: float = 5.0):
    return client.until(lambda m: m["type"] == "participants", timeout=timeout)


@database_sync_to_async
def _joined(session: VideoSession, *users: Any) -> None:
    from sessions_app.services import session_join

    for user in users:
        session_join(session=session, user=user)


@database_sync_to_async
def _left_at(session: VideoSession, user: Any):
    from sessions_app.models import Participant

    return Participant.objects.get(session=session, identity=user.identity).left_at


async def test_a_join_is_told_to_the_pages_already_open(owner, member, video_session):
    await _joined(video_session, owner)
    host = Client(owner, video_session.slug)
    await _join(host)

    await _joined(video_session, member)

    message = await _participants(host)
    assert message == {
        "type": "participants",
        "participants": [
            {"identity": owner.identity, "name": owner.name, "role": "HOST", "present": True},
            {"identity": member.identity, "name": member.name, "role": "GUEST", "present": True},
        ],
    }
    await host.disconnect()


async def test_closing_a_persons_last_page_marks_them_left_and_a_new_one_brings_them_back(
    owner, member, video_session
):
    await _joined(video_session, owner, member)
    host = Client(owner, video_session.slug)
    await _join(host)
    first, second = Client(member, video_session.slug), Client(member, video_session.slug)
    await _join(first)
    await _join(second)

    # Another page of the same person is still open: nothing changes.
    await first.disconnect()
    assert await host.comm.receive_nothing(timeout=0.5)
    assert await _left_at(video_session, member) is None

    await second.disconnect()
    assert _present(await _participants(host)) == {owner.identity: True, member.identity: False}
    assert await _left_at(video_session, member) is not None

    again = Client(member, video_session.slug)
    await again.connect()
    assert _present(await _participants(host)) == {owner.identity: True, member.identity: True}
    # The page that came back hears it too, after its opening messages.
    assert _present(await _participants(again)) == {owner.identity: True, member.identity: True}
    assert [m["type"] for m in again.messages[:3]] == [
        "connected",
        "history",
        "transcription_status",
    ]
    for client in (again, host):
        await client.disconnect()


async def test_a_page_that_stopped_pinging_stops_counting(owner, member, video_session):
    from django.core.cache import cache

    from sessions_app.services import PRESENCE_TTL

    await _joined(video_session, owner, member)
    host = Client(owner, video_session.slug)
    await _join(host)
    page = Client(member, video_session.slug)
    await _join(page)
    # A socket of a Daphne that crashed: never closed, last refreshed long ago.
    key = f"presence:{video_session.pk}:{member.identity}"
    sockets = await database_sync_to_async(cache.get)(key)
    sockets["specific.crashed!gone"] = time.time() - PRESENCE_TTL.total_seconds()
    await database_sync_to_async(cache.set)(key, sockets, 600)

    await page.disconnect()

    assert _present(await _participants(host))[member.identity] is False
    await host.disconnect()


async def test_sockets_of_people_who_never_joined_change_nobody(owner, member, video_session):
    await _joined(video_session, owner)
    host = Client(owner, video_session.slug)
    await _join(host)
    visitor = Client(member, video_session.slug)
    await _join(visitor)
    await visitor.disconnect()

    assert await host.comm.receive_nothing(timeout=0.5)
    await host.disconnect()


async def test_livekit_saying_someone_left_is_told_to_the_pages(owner, member, video_session):
    from livekit import api as livekit_api

    from sessions_app.services import livekit_event_handle

    await _joined(video_session, owner, member)
    host = Client(owner, video_session.slug)
    await _join(host)
    event = livekit_api.WebhookEvent(
        event="participant_left",
        room=livekit_api.Room(name=video_session.slug),
        participant=livekit_api.ParticipantInfo(identity=member.identity),
    )

    await database_sync_to_async(livekit_event_handle)(event=event)

    assert _present(await _participants(host)) == {owner.identity: True, member.identity: False}
    await host.disconnect()


async def test_leaving_the_space_is_told_to_the_pages(owner, member, space, video_session):
    from spaces.services import member_remove

    await _joined(video_session, owner, member)
    host = Client(owner, video_session.slug)
    await _join(host)

    await database_sync_to_async(member_remove)(
        space=space,
        member=await database_sync_to_async(space.memberships.get)(user=member),
        by=owner,
    )

    assert _present(await _participants(host)) == {owner.identity: True, member.identity: False}
    await host.disconnect()
