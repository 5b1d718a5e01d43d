"""The mesh signalling WebSocket (docs/mesh-protocol.md): who may connect, what is relayed to
whom, and what malformed, oversized or flooding clients get.

These go through the real ``rooms.asgi.application`` (origin check, cookie auth, routing). The
mesh slots live in the cache: locmem in SQLite runs, Redis when ``REDIS_URL`` is set.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any

import pytest
import websockets
from channels.db import database_sync_to_async
from django.core.cache import cache

from sessions_app import mesh
from sessions_app.models import VideoSession
from sessions_app.services import session_end
from sessions_app.tokens import transcription_token_create
from spaces.models import SpaceMember
from tests.factories import SpaceMemberFactory, UserFactory, VideoSessionFactory
from tests.live import (
    DAPHNE,
    ROOT,
    child_env,
    child_process,
    free_port,
    session_socket,
    wait_for_port,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "abcd",
}


@pytest.fixture(autouse=True)
def _empty_cache():
    """Mesh slots outlive a test in Redis (and in locmem within the process): start clean."""
    cache.clear()
    yield
    cache.clear()


class Peer:
    """A signalling client that keeps what it received."""

    def __init__(self, user: Any, slug: str, *, query: str = "") -> None:
        path = f"/ws/sessions/{slug}/signal/" + (f"?{query}" if query else "")
        self.comm = session_socket(user, path)
        self.welcome: dict[str, Any] = {}

    @property
    def peer_id(self) -> str:
        return self.welcome["peer_id"]

    async def connect(self) -> None:
        connected, _ = await self.comm.connect()
        assert connected

    async def join(self) -> dict[str, Any]:
        """Connect and read the welcome."""
        await self.connect()
        self.welcome = await self.next()
        assert self.welcome["type"] == "welcome", self.welcome
        return self.welcome

    def _stale(self, message: dict[str, Any]) -> bool:
        """A ``peer_joined`` for a peer our welcome already listed.

        A peer is announced after its own welcome, and the Redis layer resolves a group's
        members when the announcement comes back from Redis: a peer that joined in between
        lists it in its welcome AND hears it join. Clients treat that as a repeat.
        """
        listed = {p["peer_id"] for p in self.welcome.get("peers", [])}
        return message.get("type") == "peer_joined" and message.get("peer_id") in listed

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next message that is not a stale ``peer_joined``, or the close."""
        while True:
            raw = await self.comm.receive_output(timeout)
            if raw["type"] == "websocket.close":
                return {"type": "__closed__", "code": raw.get("code")}
            message = json.loads(raw["text"])
            if not self._stale(message):
                return message

    async def send(self, message: dict[str, Any]) -> None:
        await self.comm.send_to(text_data=json.dumps(message))

    async def close_code(self, timeout: float = 5.0) -> int | None:
        """Skip messages until the close; its code."""
        while True:
            message = await self.next(timeout)
            if message["type"] == "__closed__":
                return message["code"]

    async def nothing(self, timeout: float = 0.3) -> bool:
        """Nothing but stale ``peer_joined`` arrives within ``timeout``."""
        while not await self.comm.receive_nothing(timeout=timeout):
            raw = await self.comm.receive_output()
            if raw["type"] == "websocket.close" or not self._stale(json.loads(raw["text"])):
                return False
        return True

    async def healthy(self) -> None:
        await self.send({"type": "ping"})
        assert await self.next() == {"type": "pong"}

    async def disconnect(self) -> None:
        await self.comm.disconnect()


async def _refused(peer: Peer) -> int:
    """Connect; the close code. Nothing but the close may arrive."""
    await peer.connect()
    first = await peer.next()
    assert first["type"] == "__closed__", f"expected only a close, got {first}"
    assert await peer.nothing(0.2), "nothing may follow the close"
    return first["code"]


@database_sync_to_async
def _members(space, n: int) -> list:
    users = [UserFactory() for _ in range(n)]
    for user in users:
        SpaceMemberFactory(space=space, user=user, role=SpaceMember.Role.MEMBER)
    return users


@database_sync_to_async
def _peers_in_mesh(session: VideoSession) -> list[mesh.MeshPeer]:
    return mesh.mesh_peers(session_id=session.pk)


# --- who may connect ----------------------------------------------------------------------


async def test_outsider_is_closed_with_4003_and_the_mesh_learns_nothing(
    member, outsider, video_session
):
    inside = Peer(member, video_session.slug)
    await inside.join()

    assert await _refused(Peer(outsider, video_session.slug)) == 4003
    assert await inside.nothing(), "an outsider must not be announced"
    assert [p.identity for p in await _peers_in_mesh(video_session)] == [member.identity]
    await inside.disconnect()


async def test_unknown_session_is_closed_with_4003(member):
    assert await _refused(Peer(member, "no-such-session")) == 4003


async def test_no_cookie_and_no_token_is_closed_with_4001(video_session):
    assert await _refused(Peer(None, video_session.slug)) == 4001


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c"])
async def test_bad_token_is_closed_with_4001_even_with_a_signed_in_cookie(
    member, video_session, token
):
    assert await _refused(Peer(member, video_session.slug, query=f"token={token}")) == 4001
    assert await _refused(Peer(None, video_session.slug, query=f"token={token}")) == 4001


async def test_token_for_another_session_is_closed_with_4003(member, owner, space, video_session):
    other = await database_sync_to_async(VideoSessionFactory)(space=space, created_by=owner)
    token = transcription_token_create(session_slug=other.slug, identity=member.identity)
    assert await _refused(Peer(None, video_session.slug, query=f"token={token}")) == 4003


async def test_token_of_a_member_gets_in(member, video_session):
    token = transcription_token_create(session_slug=video_session.slug, identity=member.identity)
    peer = Peer(None, video_session.slug, query=f"token={token}")
    welcome = await peer.join()
    assert welcome["identity"] == member.identity
    await peer.disconnect()


async def test_ended_session_sends_session_ended_then_4004(member, video_session):
    video_session.status = VideoSession.Status.ENDED
    await database_sync_to_async(video_session.save)()
    peer = Peer(member, video_session.slug)
    await peer.connect()
    assert await peer.next() == {"type": "session_ended"}
    assert await peer.next() == {"type": "__closed__", "code": 4004}
    assert await _peers_in_mesh(video_session) == []


async def test_ending_the_session_closes_connected_peers_with_4004(owner, member, video_session):
    peer = Peer(member, video_session.slug)
    await peer.join()
    await database_sync_to_async(session_end)(session=video_session, by=owner)
    assert await peer.next() == {"type": "session_ended"}
    assert await peer.close_code() == 4004
    await peer.disconnect()  # the browser completes the closing handshake
    assert await _peers_in_mesh(video_session) == []


# --- joining, leaving, relaying -------------------------------------------------------------


async def test_welcome_lists_existing_peers_and_they_hear_of_the_newcomer(
    settings, owner, member, video_session
):
    settings.WEBRTC_STUN_URLS = ["stun:stun.example.org:3478"]
    first = Peer(owner, video_session.slug)
    await first.join()
    assert first.welcome["peers"] == []
    assert first.welcome["identity"] == owner.identity
    assert first.welcome["name"] == owner.name
    assert first.welcome["max_peers"] == settings.MESH_MAX_PARTICIPANTS
    assert first.welcome["ice_servers"] == [{"urls": ["stun:stun.example.org:3478"]}]

    second = Peer(member, video_session.slug)
    await second.join()
    assert second.welcome["peers"] == [
        {"peer_id": first.peer_id, "identity": owner.identity, "name": owner.name}
    ]
    assert second.peer_id != first.peer_id
    assert await first.next() == {
        "type": "peer_joined",
        "peer_id": second.peer_id,
        "identity": member.identity,
        "name": member.name,
    }
    assert await second.nothing(), "a peer is not told about itself"
    await first.disconnect()
    await second.disconnect()


async def test_offer_answer_and_ice_are_relayed_with_from(owner, member, video_session):
    a, b = Peer(owner, video_session.slug), Peer(member, video_session.slug)
    await a.join()
    await b.join()
    await a.next()  # peer_joined

    await b.send({"type": "offer", "to": a.peer_id, "sdp": SDP})
    assert await a.next() == {"type": "offer", "from": b.peer_id, "sdp": SDP}
    await a.send({"type": "answer", "to": b.peer_id, "sdp": SDP})
    assert await b.next() == {"type": "answer", "from": a.peer_id, "sdp": SDP}
    await b.send({"type": "ice", "to": a.peer_id, "candidate": CANDIDATE})
    assert await a.next() == {"type": "ice", "from": b.peer_id, "candidate": CANDIDATE}
    await a.send({"type": "ice", "to": b.peer_id, "candidate": None})
    assert await b.next() == {"type": "ice", "from": a.peer_id, "candidate": None}
    # Only the addressee hears it, and the sender's extra fields are not passed on.
    await a.send({"type": "offer", "to": b.peer_id, "sdp": SDP, "from": "forged", "x": 1})
    assert await b.next() == {"type": "offer", "from": a.peer_id, "sdp": SDP}
    assert await a.nothing()
    await a.disconnect()
    await b.disconnect()


async def test_media_state_is_broadcast_to_the_others(owner, member, video_session):
    a, b = Peer(owner, video_session.slug), Peer(member, video_session.slug)
    await a.join()
    await b.join()
    await a.next()  # peer_joined
    await b.send({"type": "media", "audio": False, "video": True})
    assert await a.next() == {
        "type": "peer_media",
        "peer_id": b.peer_id,
        "audio": False,
        "video": True,
    }
    assert await b.nothing()
    await a.disconnect()
    await b.disconnect()


async def test_message_to_a_peer_of_another_session_is_dropped(owner, member, space, video_session):
    other_session = await database_sync_to_async(VideoSessionFactory)(space=space, created_by=owner)
    here = Peer(owner, video_session.slug)
    there = Peer(member, other_session.slug)
    await here.join()
    await there.join()
    assert there.welcome["peers"] == [], "sessions do not share a mesh"

    for message in (
        {"type": "offer", "to": there.peer_id, "sdp": SDP},
        {"type": "answer", "to": there.peer_id, "sdp": SDP},
        {"type": "ice", "to": there.peer_id, "candidate": CANDIDATE},
    ):
        await here.send(message)
    assert await there.nothing(0.5), "a peer of another session must receive nothing"
    await here.healthy()
    await there.healthy()
    await here.disconnect()
    await there.disconnect()


@pytest.mark.parametrize("to", ["no-such-peer", "x" * 32])
async def test_message_to_an_unknown_peer_is_dropped(owner, member, video_session, to):
    a, b = Peer(owner, video_session.slug), Peer(member, video_session.slug)
    await a.join()
    await b.join()
    await a.next()  # peer_joined
    await a.send({"type": "offer", "to": to, "sdp": SDP})
    await a.send({"type": "offer", "to": a.peer_id, "sdp": SDP})  # to itself
    assert await b.nothing()
    await a.healthy()
    await a.disconnect()
    await b.disconnect()


async def test_peer_left_is_broadcast_and_the_slot_released_on_disconnect(
    owner, member, video_session
):
    a, b = Peer(owner, video_session.slug), Peer(member, video_session.slug)
    await a.join()
    await b.join()
    await a.next()  # peer_joined
    assert len(await _peers_in_mesh(video_session)) == 2

    await b.disconnect()
    assert await a.next() == {"type": "peer_left", "peer_id": b.peer_id}
    assert [p.peer_id for p in await _peers_in_mesh(video_session)] == [a.peer_id]
    await a.disconnect()
    assert await _peers_in_mesh(video_session) == []


async def test_leave_closes_normally_and_is_broadcast(owner, member, video_session):
    a, b = Peer(owner, video_session.slug), Peer(member, video_session.slug)
    await a.join()
    await b.join()
    await a.next()  # peer_joined
    await b.send({"type": "leave"})
    assert await b.next() == {"type": "__closed__", "code": 1000}
    await b.disconnect()
    assert await a.next() == {"type": "peer_left", "peer_id": b.peer_id}
    await a.disconnect()


async def test_ping_gets_pong_and_keeps_the_slot(settings, member, video_session):
    peer = Peer(member, video_session.slug)
    await peer.join()
    key = f"mesh:{video_session.pk}:0"
    await database_sync_to_async(cache.delete)(key)  # as if it had expired
    await peer.healthy()
    assert [p.peer_id for p in await _peers_in_mesh(video_session)] == [peer.peer_id]
    await peer.disconnect()


async def test_a_reload_is_a_new_peer_and_the_old_one_leaves(owner, member, video_session):
    a, b = Peer(owner, video_session.slug), Peer(member, video_session.slug)
    await a.join()
    await b.join()
    await a.next()  # peer_joined
    await b.disconnect()
    again = Peer(member, video_session.slug)
    await again.join()
    assert again.peer_id != b.peer_id
    assert [p["peer_id"] for p in again.welcome["peers"]] == [a.peer_id]
    seen = [await a.next(), await a.next()]
    assert {"type": "peer_left", "peer_id": b.peer_id} in seen
    assert any(m["type"] == "peer_joined" and m["peer_id"] == again.peer_id for m in seen)
    await a.disconnect()
    await again.disconnect()


# --- mesh cap: mesh_full then 4013 ---------------------------------------------------------


async def test_fifth_participant_gets_mesh_full_then_4013_and_a_freed_place_is_reused(
    settings, space, video_session
):
    settings.MESH_MAX_PARTICIPANTS = 4
    users = await _members(space, 6)
    inside = [Peer(user, video_session.slug) for user in users[:4]]
    for peer in inside:
        await peer.join()
    assert len(inside[-1].welcome["peers"]) == 3

    fifth = Peer(users[4], video_session.slug)
    await fifth.connect()
    full = await fifth.next()
    assert full["type"] == "mesh_full"
    assert full["max_peers"] == 4
    assert "LiveKit" in full["message"]
    assert await fifth.next() == {"type": "__closed__", "code": 4013}
    await fifth.disconnect()
    assert len(await _peers_in_mesh(video_session)) == 4
    assert not any(
        m["type"] == "peer_joined" and m["identity"] == users[4].identity
        for m in [await inside[0].next() for _ in range(3)]  # the other three joining
    )
    assert await inside[0].nothing(), "a refused peer is never announced"

    await inside[1].disconnect()
    assert await inside[0].next() == {"type": "peer_left", "peer_id": inside[1].peer_id}
    sixth = Peer(users[5], video_session.slug)
    welcome = await sixth.join()
    assert len(welcome["peers"]) == 3
    for peer in (inside[0], inside[2], inside[3], sixth):
        await peer.disconnect()


# --- malformed, oversized, flooding ----------------------------------------------------------


async def _closed_for(member, video_session, **frame: Any) -> int | None:
    peer = Peer(member, video_session.slug)
    await peer.join()
    await peer.comm.send_to(**frame)
    code = await peer.close_code()
    await peer.disconnect()
    return code


def _text(message: Any) -> dict[str, str]:
    return {"text_data": json.dumps(message)}


MALFORMED = {
    "binary": {"bytes_data": b"\x00\x01"},
    "not_json": {"text_data": "{not json"},
    "json_not_an_object": _text(["offer"]),
    "unknown_type": _text({"type": "hello"}),
    "no_type": _text({"to": "x", "sdp": SDP}),
    "offer_without_to": _text({"type": "offer", "sdp": SDP}),
    "offer_to_not_a_string": _text({"type": "offer", "to": 5, "sdp": SDP}),
    "to_too_long": _text({"type": "offer", "to": "x" * 33, "sdp": SDP}),
    "offer_without_sdp": _text({"type": "offer", "to": "x"}),
    "empty_sdp": _text({"type": "answer", "to": "x", "sdp": ""}),
    "sdp_not_a_string": _text({"type": "answer", "to": "x", "sdp": {"sdp": SDP}}),
    "sdp_over_32_kib": _text({"type": "offer", "to": "x", "sdp": "a" * (32 * 1024 + 1)}),
    "candidate_a_string": _text({"type": "ice", "to": "x", "candidate": "candidate:1"}),
    "candidate_unknown_key": _text({"type": "ice", "to": "x", "candidate": {**CANDIDATE, "x": 1}}),
    "candidate_text_not_a_string": _text(
        {"type": "ice", "to": "x", "candidate": {**CANDIDATE, "candidate": 1}}
    ),
    "candidate_over_2_kib": _text(
        {"type": "ice", "to": "x", "candidate": {**CANDIDATE, "candidate": "c" * 2049}}
    ),
    "mline_index_a_bool": _text(
        {"type": "ice", "to": "x", "candidate": {**CANDIDATE, "sdpMLineIndex": True}}
    ),
    "mline_index_out_of_range": _text(
        {"type": "ice", "to": "x", "candidate": {**CANDIDATE, "sdpMLineIndex": 64}}
    ),
    "sdp_mid_too_long": _text(
        {"type": "ice", "to": "x", "candidate": {**CANDIDATE, "sdpMid": "m" * 65}}
    ),
    "media_not_bools": _text({"type": "media", "audio": 1, "video": "yes"}),
    "text_over_64_kib": _text({"type": "ping", "padding": "p" * (64 * 1024)}),
}


@pytest.mark.parametrize("frame", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_message_is_closed_with_4002(member, video_session, frame):
    assert await _closed_for(member, video_session, **frame) == 4002
    assert await _peers_in_mesh(video_session) == [], "the slot is released"


async def test_largest_allowed_sdp_and_candidate_pass(owner, member, video_session):
    a, b = Peer(owner, video_session.slug), Peer(member, video_session.slug)
    await a.join()
    await b.join()
    await a.next()  # peer_joined
    sdp = "a" * (32 * 1024)
    candidate = {**CANDIDATE, "candidate": "c" * 2048, "sdpMLineIndex": 63}
    await b.send({"type": "offer", "to": a.peer_id, "sdp": sdp})
    assert (await a.next())["sdp"] == sdp
    await b.send({"type": "ice", "to": a.peer_id, "candidate": candidate})
    assert (await a.next())["candidate"] == candidate
    await a.disconnect()
    await b.disconnect()


async def test_more_than_100_messages_in_a_second_is_closed_with_4008(owner, member, video_session):
    flooder, other = Peer(member, video_session.slug), Peer(owner, video_session.slug)
    await other.join()
    await flooder.join()
    await other.next()  # peer_joined
    for _ in range(150):
        await flooder.send({"type": "ice", "to": "no-such-peer", "candidate": None})
    assert await flooder.close_code() == 4008
    await flooder.disconnect()
    assert await other.next() == {"type": "peer_left", "peer_id": flooder.peer_id}
    await other.disconnect()


async def test_a_steady_rate_under_the_limit_is_fine(member, video_session):
    peer = Peer(member, video_session.slug)
    await peer.join()
    for burst in range(2):
        if burst:
            await asyncio.sleep(1.1)
        for _ in range(90):
            await peer.send({"type": "ice", "to": "no-such-peer", "candidate": None})
    await peer.healthy()
    await peer.disconnect()


# --- one slot per person: nobody keeps the others out by opening sockets ---------------------


async def test_a_members_extra_sockets_never_keep_the_host_out(
    settings, owner, member, space, video_session
):
    """Issue 13: one member opened MESH_MAX_PARTICIPANTS sockets and the host got 4013."""
    settings.MESH_MAX_PARTICIPANTS = 4
    theirs = [Peer(member, video_session.slug) for _ in range(6)]
    for peer in theirs:
        await peer.connect()  # all at once, as a script would
    welcomes = await asyncio.gather(*(peer.next() for peer in theirs))
    assert all(w["type"] == "welcome" for w in welcomes), welcomes
    in_mesh = await _peers_in_mesh(video_session)
    assert [p.identity for p in in_mesh] == [member.identity], "one slot per person"

    host = Peer(owner, video_session.slug)
    welcome = await host.join()
    assert [p["identity"] for p in welcome["peers"]] == [member.identity]
    for peer in (*theirs, host):
        await peer.disconnect()


async def test_a_second_socket_of_the_same_person_takes_over_and_the_first_gets_4010(
    owner, member, video_session
):
    host = Peer(owner, video_session.slug)
    await host.join()
    first = Peer(member, video_session.slug)
    await first.join()
    second = Peer(member, video_session.slug)
    await second.join()

    assert await first.next() == {"type": "replaced"}
    assert await first.close_code() == 4010
    await first.disconnect()
    assert [
        p.peer_id for p in await _peers_in_mesh(video_session) if p.identity == member.identity
    ] == [second.peer_id]
    # The host saw the first leave and the second arrive; the second still relays.
    seen = [await host.next() for _ in range(3)]
    assert {"type": "peer_left", "peer_id": first.peer_id} in seen
    await second.send({"type": "offer", "to": host.peer_id, "sdp": SDP})
    assert (await host.next())["from"] == second.peer_id
    await host.disconnect()
    await second.disconnect()


# --- a real Daphne: sockets that are closing when the session ends ------------------------------


async def _silent_socket(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that shakes hands and then never reads nor answers: a socket the
    server closes stays closing (Daphne waits 1 s for the close reply), as a page's does while
    its browser is busy or its network slow."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{port}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def _dropped(reader: asyncio.StreamReader, timeout: float = 10.0) -> None:
    """Wait until the server drops the silent client (it gave up waiting for a close reply)."""
    async with asyncio.timeout(timeout):
        try:
            while await reader.read(65536):
                pass
        except ConnectionResetError:
            pass  # dropped with unread data still queued: a reset


@pytest.mark.services
async def test_peers_leaving_as_the_session_ends_log_no_traceback(owner, member, video_session):
    """Regression: ``Attempt to send on a closed protocol`` from ``mesh_peer_left`` at session
    end. The host's page is slow to answer the server's close; the guest's answers at once and
    its leaving is announced to the host's socket, which is still closing. That send (and the
    run's and the transcript's late events) must be dropped quietly, not end in a traceback."""
    port = free_port()
    log = ROOT / "artifacts" / "mesh-closing-daphne.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    env = await database_sync_to_async(child_env)()
    args = [*DAPHNE, "-b", "127.0.0.1", "-p", str(port), "rooms.asgi:application"]
    slug = video_session.slug
    tokens = {
        user: transcription_token_create(session_slug=slug, identity=user.identity)
        for user in (owner, member)
    }
    with child_process(args, env=env, log=log) as process:
        await asyncio.to_thread(wait_for_port, port, timeout=30, process=process)
        silent = [
            await _silent_socket(port, f"/ws/sessions/{slug}/{route}/?token={tokens[owner]}")
            for route in ("signal", "transcript")
        ]
        guest = [
            await websockets.connect(
                f"ws://127.0.0.1:{port}/ws/sessions/{slug}/{route}/?token={tokens[member]}",
                origin=f"http://127.0.0.1:{port}",
                proxy=None,
                open_timeout=10,
            )
            for route in ("signal", "transcript")
        ]
        welcome = json.loads(await asyncio.wait_for(guest[0].recv(), 10))
        assert [p["identity"] for p in welcome["peers"]] == [owner.identity], welcome

        await database_sync_to_async(session_end)(session=video_session, by=owner)
        for ws in guest:  # the guest's page answers the close at once and is gone
            await asyncio.wait_for(ws.wait_closed(), 10)
            assert ws.close_code == 4004
        for reader, _ in silent:
            await _dropped(reader)
        for _, writer in silent:
            writer.close()
        async with asyncio.timeout(10):  # Daphne has seen all four sockets go
            while log.read_text(errors="replace").count("WSDISCONNECT") < 4:
                await asyncio.sleep(0.05)
        # Daphne reports an application that failed on its next check, once a second.
        await asyncio.sleep(2.5)
        assert process.poll() is None
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "closed protocol" not in text, text[-4000:]
