"""Access ends when membership ends (issue 13): a removed member's open sockets close at once.

Through the real ``rooms.asgi.application`` with the channel layer of the test settings (Redis
when ``REDIS_URL`` is set, as in CI). The same across several Daphnes:
``test_access_revocation_daphnes.py``.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core.cache import cache

from sessions_app.models import Participant, VideoSession
from sessions_app.services import session_delete, session_join
from spaces.models import SpaceMember
from spaces.services import member_remove, space_delete
from tests.sessions_app.test_mesh_signalling import Peer
from tests.transcription.conftest import Client
from transcription.live import broadcast
from transcription.models import TranscriptionRun, TranscriptionUsage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

FRAME = b"\x01\x00" * 640  # 40 ms of PCM16 at 16 kHz
REVOKED_TEXT = "You no longer have access to this space."
WITHIN = 1.0
"""The issue's bound: closed within a second of the removal's commit."""


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(params=["redis", "embedded"])
def layer(request, settings):
    """The distributed mode's channel layer (Redis pub/sub, as CI configures the tests) and the
    embedded mode's in-memory one (``make run``)."""
    if request.param == "embedded":
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "rooms.layers.EmbeddedChannelLayer",
                "CONFIG": {"capacity": 2000},
            }
        }
    return request.param


async def _transcript(user, slug: str) -> Client:
    client = Client(user, slug)
    await client.connect()
    assert [(await client.next())["type"] for _ in range(3)] == [
        "connected",
        "history",
        "transcription_status",
    ]
    return client


async def _revoked_within(client: Client | Peer, seconds: float = WITHIN) -> None:
    """The socket is told why, then closed with 4003, within ``seconds``."""
    message = await client.next(timeout=seconds)
    while message["type"] in ("peer_joined", "peer_left", "peer_media"):
        message = await client.next(timeout=seconds)
    assert message == {"type": "access_revoked", "message": REVOKED_TEXT}
    assert await client.next(timeout=seconds) == {"type": "__closed__", "code": 4003}


@database_sync_to_async
def _remove(space, user, by) -> None:
    member_remove(space=space, member=space.memberships.get(user=user), by=by)


async def test_removing_a_member_closes_their_transcript_and_signal_sockets_with_4003(
    layer, owner, member, space, video_session
):
    expected = {"embedded": "EmbeddedChannelLayer", "redis": "PubSubChannelLayer"}[layer]
    assert type(get_channel_layer()).__name__ == expected
    transcript = await _transcript(member, video_session.slug)
    peer = Peer(member, video_session.slug)
    await peer.join()
    host_transcript = await _transcript(owner, video_session.slug)
    host_peer = Peer(owner, video_session.slug)
    await host_peer.join()

    started = time.monotonic()
    await _remove(space, member, owner)
    await _revoked_within(transcript)
    await _revoked_within(peer)
    assert time.monotonic() - started < 2 * WITHIN

    # The host's sockets are untouched; the host's mesh hears the removed peer leave.
    left = await host_peer.next()
    while left["type"] != "peer_left":
        left = await host_peer.next()
    assert left["peer_id"] == peer.peer_id
    await host_peer.send({"type": "ping"})
    assert await host_peer.next() == {"type": "pong"}
    await host_transcript.comm.send_to(text_data='{"type": "ping"}')
    assert await host_transcript.next() == {"type": "pong"}
    for client in (transcript, host_transcript):
        await client.disconnect()
    for p in (peer, host_peer):
        await p.disconnect()


async def test_a_removed_member_gets_no_more_transcript_and_their_audio_reaches_no_run(
    owner, member, space, video_session
):
    layer = get_channel_layer()
    channel = await layer.new_channel("transcription.run.")

    @database_sync_to_async
    def browser_run() -> TranscriptionRun:
        run = TranscriptionRun.objects.create(
            session=video_session,
            mode="BROWSER",
            provider="local",
            status=TranscriptionRun.Status.ACTIVE,
            control_channel=channel,
        )
        TranscriptionUsage.objects.create(session=video_session, run=run, provider="local")
        return run

    run = await browser_run()
    client = await _transcript(member, video_session.slug)
    await client.comm.send_to(text_data='{"type": "ping"}')  # the opening status is read
    assert await client.next() == {"type": "pong"}
    await client.comm.send_to(bytes_data=FRAME)
    forwarded = await asyncio.wait_for(layer.receive(channel), 5)
    assert forwarded["type"] == "audio.frame" and forwarded["source"] == member.identity

    await _remove(space, member, owner)
    await _revoked_within(client)
    # What the page still sends before it hears the close reaches no run, and the live
    # transcript no longer reaches it.
    await client.comm.send_to(bytes_data=FRAME)
    await broadcast.send_transcript(
        video_session.pk,
        {"type": "transcript", "utterance_id": "u1", "text": "secret", "is_final": True},
    )
    leave = await asyncio.wait_for(layer.receive(channel), 5)
    assert leave == {"type": "audio.leave", "source": member.identity}
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.5)
    assert await client.comm.receive_nothing(timeout=0.3)
    assert run.pk
    await client.disconnect()


async def test_a_removed_member_cannot_reconnect_with_their_cookie_or_their_token(
    owner, member, space, video_session
):
    joined = await database_sync_to_async(session_join)(session=video_session, user=member)
    await _remove(space, member, owner)
    query = f"token={joined.transcription_token}"
    for client in (
        Client(member, video_session.slug),
        Client(None, video_session.slug, query=query),
    ):
        await client.connect()
        assert await client.next() == {"type": "__closed__", "code": 4003}
    peer = Peer(None, video_session.slug, query=query)
    await peer.connect()
    assert await peer.next() == {"type": "__closed__", "code": 4003}


async def test_removal_marks_the_member_as_gone_from_the_space_sessions(
    owner, member, space, video_session
):
    await database_sync_to_async(session_join)(session=video_session, user=member)
    await _remove(space, member, owner)

    @database_sync_to_async
    def still_here() -> bool:
        return Participant.objects.filter(
            session=video_session, user=member, left_at__isnull=True
        ).exists()

    assert not await still_here()


async def test_a_rolled_back_removal_closes_nothing(owner, member, space, video_session):
    from django.db import transaction

    client = await _transcript(member, video_session.slug)

    @database_sync_to_async
    def remove_then_roll_back() -> None:
        with pytest.raises(RuntimeError), transaction.atomic():
            member_remove(space=space, member=space.memberships.get(user=member), by=owner)
            raise RuntimeError("rolled back")

    await remove_then_roll_back()
    assert await client.comm.receive_nothing(timeout=0.5)
    await client.comm.send_to(text_data='{"type": "ping"}')
    assert await client.next() == {"type": "pong"}
    await client.disconnect()


async def test_deleting_the_session_closes_every_socket_of_it_with_4003(
    layer, owner, member, video_session
):
    sockets = [
        await _transcript(member, video_session.slug),
        await _transcript(owner, video_session.slug),
    ]
    peer = Peer(member, video_session.slug)
    await peer.join()
    await database_sync_to_async(session_delete)(session=video_session, by=owner)
    for client in (*sockets, peer):
        await _revoked_within(client)
    assert not await database_sync_to_async(
        VideoSession.objects.filter(pk=video_session.pk).exists
    )()


async def test_deleting_the_space_closes_every_members_sockets_with_4003(
    layer, owner, member, space, video_session
):
    sockets = [
        await _transcript(member, video_session.slug),
        await _transcript(owner, video_session.slug),
    ]
    peer = Peer(member, video_session.slug)
    await peer.join()
    await database_sync_to_async(space_delete)(space=space, by=owner)
    for client in (*sockets, peer):
        await _revoked_within(client)
    assert not await database_sync_to_async(SpaceMember.objects.filter(space_id=space.pk).exists)()


async def test_a_member_of_another_space_keeps_their_sockets(owner, member, space, video_session):
    """The revocation is per person and space: the same person elsewhere is untouched."""
    from spaces.services import space_create
    from tests.factories import SpaceMemberFactory, VideoSessionFactory

    @database_sync_to_async
    def elsewhere():
        other = space_create(owner=owner, name="Elsewhere")
        SpaceMemberFactory(space=other, user=member)
        return VideoSessionFactory(space=other, created_by=owner)

    other_session = await elsewhere()
    here = await _transcript(member, video_session.slug)
    there = await _transcript(member, other_session.slug)
    await _remove(space, member, owner)
    await _revoked_within(here)
    assert await there.comm.receive_nothing(timeout=0.5)
    await there.comm.send_to(text_data='{"type": "ping"}')
    assert await there.next() == {"type": "pong"}
    await there.disconnect()
