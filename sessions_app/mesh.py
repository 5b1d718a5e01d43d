"""Who is in a session's peer-to-peer mesh: a bounded set of slots in the shared cache.

Each connected signalling socket holds one slot, claimed with an atomic ``cache.add`` (SET NX
in Redis), so the mesh cap holds across Daphne processes without a database row per socket.
A slot expires unless its holder refreshes it (the page pings), so a crashed browser frees its
place by itself.
"""

from __future__ import annotations

import secrets
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


def mesh_claim(*, session_id: int, peer: MeshPeer) -> int | None:
    """Take a free slot for ``peer``; its index, or None when the mesh is full."""
    for index, key in enumerate(_keys(session_id)):
        if cache.add(key, asdict(peer), timeout=settings.MESH_PEER_TTL_SECONDS):
            return index
    return None


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
