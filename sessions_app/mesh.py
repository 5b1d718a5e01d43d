"""Who is in a session's peer-to-peer mesh: a bounded set of slots in the shared cache.

Each connected signalling socket holds one slot, claimed with an atomic ``cache.add`` (SET NX
in Redis), so the mesh cap holds across Daphne processes without a database row per socket.
A slot expires unless its holder refreshes it (the page pings), so a crashed browser frees its
place by itself.

One person holds at most one slot: a second socket of the same identity (another tab, a
reload whose old socket has not closed yet, or someone trying to fill the mesh) takes over
that person's slot, and the older socket is told to close (4010). So nobody can keep the
others out by opening sockets.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True, slots=True)
class MeshPeer:
    peer_id: str
    channel: str
    identity: str
    name: str

    def public(self) -> dict[str, str]:
        return {"peer_id": self.peer_id, "identity": self.identity, "name": self.name}


def _slot_key(session_id: int, index: int) -> str:
    return f"mesh:{session_id}:{index}"


def _keys(session_id: int) -> list[str]:
    return [_slot_key(session_id, i) for i in range(settings.MESH_MAX_PARTICIPANTS)]


def new_peer_id() -> str:
    return secrets.token_urlsafe(9)


# How long one identity's claims are serialised (a claim takes a few cache round trips).
_CLAIM_LOCK_SECONDS = 5
_CLAIM_WAIT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Claim:
    index: int | None
    """The slot taken, or None when the mesh is full."""
    replaced: MeshPeer | None = None
    """The same person's older socket whose slot this claim took over: tell it to close."""


def mesh_claim(*, session_id: int, peer: MeshPeer) -> Claim:
    """Take a slot for ``peer``: the slot its identity already holds, else a free one.

    Claims of one identity are serialised by a short lock in the cache, so sockets opened
    all at once cannot each take a free slot before seeing each other's.
    """
    lock = f"mesh:{session_id}:claim:{peer.identity}"
    deadline = time.monotonic() + _CLAIM_WAIT_SECONDS
    while not cache.add(lock, 1, timeout=_CLAIM_LOCK_SECONDS):
        if time.monotonic() > deadline:
            return Claim(None)  # the person is claiming in a flood of sockets: refuse this one
        time.sleep(0.02)
    try:
        keys = _keys(session_id)
        held = cache.get_many(keys)
        for index, key in enumerate(keys):
            value = held.get(key)
            if value is not None and value["identity"] == peer.identity:
                cache.set(key, asdict(peer), timeout=settings.MESH_PEER_TTL_SECONDS)
                return Claim(index, replaced=MeshPeer(**value))
        for index, key in enumerate(keys):
            if cache.add(key, asdict(peer), timeout=settings.MESH_PEER_TTL_SECONDS):
                return Claim(index)
        return Claim(None)
    finally:
        cache.delete(lock)


def mesh_refresh(*, session_id: int, index: int, peer: MeshPeer) -> bool:
    """Keep the slot alive; False if it expired and was taken by someone else meanwhile."""
    key = _slot_key(session_id, index)
    if cache.get(key) == asdict(peer):
        return cache.touch(key, timeout=settings.MESH_PEER_TTL_SECONDS)
    return cache.add(key, asdict(peer), timeout=settings.MESH_PEER_TTL_SECONDS)


def mesh_release(*, session_id: int, index: int, peer: MeshPeer) -> None:
    key = _slot_key(session_id, index)
    if cache.get(key) == asdict(peer):
        cache.delete(key)


def mesh_peers(*, session_id: int) -> list[MeshPeer]:
    found = cache.get_many(_keys(session_id))
    return [MeshPeer(**value) for value in found.values()]


def ice_servers() -> list[dict[str, object]]:
    """The RTCPeerConnection ``iceServers`` for the pages (none needed on a LAN)."""
    servers: list[dict[str, object]] = []
    if settings.WEBRTC_STUN_URLS:
        servers.append({"urls": settings.WEBRTC_STUN_URLS})
    if settings.WEBRTC_TURN_URLS:
        servers.append(
            {
                "urls": settings.WEBRTC_TURN_URLS,
                "username": settings.WEBRTC_TURN_USERNAME,
                "credential": settings.WEBRTC_TURN_CREDENTIAL,
            }
        )
    return servers


def mesh_group(session_id: int) -> str:
    return f"mesh.{session_id}"
