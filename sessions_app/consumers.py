"""Mesh signalling: browsers of a small session connect peer to peer; the server only relays
offers, answers and ICE candidates between the session's own participants.

Protocol and close codes: ``docs/mesh-protocol.md``.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.translation import ngettext

from rooms import logging_setup, metrics
from rooms.ws_dispatch import BatchedDispatchMixin
from sessions_app import mesh
from sessions_app.ws import (
    CLOSE_MALFORMED,
    CLOSE_SESSION_ENDED,
    QuietCloseMixin,
    SessionSocketMixin,
)

CLOSE_FLOOD = 4008
CLOSE_REPLACED = 4010
CLOSE_MESH_FULL = 4013

MAX_TEXT_BYTES = 64 * 1024
MAX_SDP_CHARS = 32 * 1024
MAX_CANDIDATE_CHARS = 2048
MAX_MESSAGES_PER_SECOND = 100
PEER_ID_MAX = 32


def _valid_candidate(candidate: object) -> bool:
    if candidate is None:
        return True  # end of candidates
    if not isinstance(candidate, dict) or set(candidate) - {
        "candidate",
        "sdpMid",
        "sdpMLineIndex",
        "usernameFragment",
    }:
        return False
    text, mid = candidate.get("candidate"), candidate.get("sdpMid")
    index, ufrag = candidate.get("sdpMLineIndex"), candidate.get("usernameFragment")
    return (
        isinstance(text, str)
        and len(text) <= MAX_CANDIDATE_CHARS
        and (mid is None or (isinstance(mid, str) and len(mid) <= 64))
        and (
            index is None
            or (isinstance(index, int) and not isinstance(index, bool) and 0 <= index < 64)
        )
        and (ufrag is None or (isinstance(ufrag, str) and len(ufrag) <= 256))
    )


def validate(message: object) -> dict[str, Any] | None:
    """The message if it is a well-formed client message, else None."""
    if not isinstance(message, dict):
        return None
    kind = message.get("type")
    if kind in ("ping", "leave"):
        return message
    if kind == "media":
        ok = all(isinstance(message.get(k), bool) for k in ("audio", "video"))
        return message if ok else None
    to = message.get("to")
    if not isinstance(to, str) or not 0 < len(to) <= PEER_ID_MAX:
        return None
    if kind in ("offer", "answer"):
        sdp = message.get("sdp")
        return message if isinstance(sdp, str) and 0 < len(sdp) <= MAX_SDP_CHARS else None
    if kind == "ice":
        return message if _valid_candidate(message.get("candidate")) else None
    return None


class MeshSignalConsumer(
    BatchedDispatchMixin, QuietCloseMixin, SessionSocketMixin, AsyncWebsocketConsumer
):
    async def connect(self) -> None:
        self.group = ""
        self.slot: int | None = None
        self.times: deque[float] = deque(maxlen=MAX_MESSAGES_PER_SECOND + 1)
        if not await self.open_session_socket():
            return
        session, user = self.session, self.user
        logging_setup.bind(session=session.slug)
        metrics.ws_opened(self, "signal")
        self.peer = mesh.MeshPeer(
            peer_id=mesh.new_peer_id(),
            channel=self.channel_name,
            identity=user.identity,
            name=user.name,
        )
        claim = await sync_to_async(mesh.mesh_claim)(session_id=session.pk, peer=self.peer)
        self.slot = claim.index
        if claim.replaced is not None:
            await self.channel_layer.send(claim.replaced.channel, {"type": "mesh.replaced"})
        if self.slot is None:
            limit = settings.MESH_MAX_PARTICIPANTS
            with translation.override(self.interface_language or None):
                message = ngettext(
                    "Peer-to-peer video is limited to %(count)d person. Larger meetings need "
                    "LiveKit: ask your administrator to configure it.",
                    "Peer-to-peer video is limited to %(count)d people. Larger meetings need "
                    "LiveKit: ask your administrator to configure it.",
                    limit,
                ) % {"count": limit}
            await self._send({"type": "mesh_full", "max_peers": limit, "message": message})
            await self.close(code=CLOSE_MESH_FULL)
            return
        self.group = mesh.mesh_group(session.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        peers = await sync_to_async(mesh.mesh_peers)(session_id=session.pk)
        await self._send(
            {
                "type": "welcome",
                **self.peer.public(),
                "peers": [p.public() for p in peers if p.peer_id != self.peer.peer_id],
                "ice_servers": mesh.ice_servers(),
                "max_peers": settings.MESH_MAX_PARTICIPANTS,
            }
        )
        await self.channel_layer.group_send(
            self.group, {"type": "mesh.peer_joined", "peer": self.peer.public()}
        )

    async def disconnect(self, code: int) -> None:
        self.closing = True
        metrics.ws_closed(self)
        await self._leave()
        await self.close_session_socket()

    async def access_revoked(self, event: dict[str, Any]) -> None:
        # Out of the mesh before the close is acknowledged: no relaying meanwhile.
        await self._leave()
        await super().access_revoked(event)

    async def _leave(self) -> None:
        """Give up the mesh slot and tell the peers (idempotent)."""
        if self.slot is not None:
            await sync_to_async(mesh.mesh_release)(
                session_id=self.session.pk, index=self.slot, peer=self.peer
            )
            self.slot = None
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_send(
                self.group, {"type": "mesh.peer_left", "peer_id": self.peer.peer_id}
            )
            self.group = ""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.group:
            return
        now = time.monotonic()
        self.times.append(now)
        if len(self.times) > MAX_MESSAGES_PER_SECOND and now - self.times[0] < 1.0:
            await self.close(code=CLOSE_FLOOD)
            return
        if text_data is None or len(text_data) > MAX_TEXT_BYTES:
            await self.close(code=CLOSE_MALFORMED)
            return
        try:
            message = validate(json.loads(text_data))
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python's stack
            message = None
        if message is None:
            await self.close(code=CLOSE_MALFORMED)
            return
        kind = message["type"]
        if kind == "ping":
            await sync_to_async(mesh.mesh_refresh)(
                session_id=self.session.pk, index=self.slot, peer=self.peer
            )
            await self._send({"type": "pong"})
        elif kind == "leave":
            await self.close(code=1000)
        elif kind == "media":
            await self.channel_layer.group_send(
                self.group,
                {
                    "type": "mesh.peer_media",
                    "peer_id": self.peer.peer_id,
                    "audio": message["audio"],
                    "video": message["video"],
                },
            )
        else:
            await self._relay(message)

    async def _relay(self, message: dict[str, Any]) -> None:
        """Pass an offer/answer/candidate to a peer of THIS session; anything else is dropped."""
        peers = await sync_to_async(mesh.mesh_peers)(session_id=self.session.pk)
        target = next((p for p in peers if p.peer_id == message["to"]), None)
        if target is None or target.peer_id == self.peer.peer_id:
            return
        payload = {k: v for k, v in message.items() if k in ("type", "sdp", "candidate")}
        payload["from"] = self.peer.peer_id
        await self.channel_layer.send(target.channel, {"type": "mesh.relay", "payload": payload})

    # --- channel layer events -------------------------------------------------------------

    async def mesh_relay(self, event: dict[str, Any]) -> None:
        await self._send(event["payload"])

    async def mesh_peer_joined(self, event: dict[str, Any]) -> None:
        if event["peer"]["peer_id"] != self.peer.peer_id:
            await self._send({"type": "peer_joined", **event["peer"]})

    async def mesh_peer_left(self, event: dict[str, Any]) -> None:
        if event["peer_id"] != self.peer.peer_id:
            await self._send({"type": "peer_left", "peer_id": event["peer_id"]})

    async def mesh_peer_media(self, event: dict[str, Any]) -> None:
        if event["peer_id"] != self.peer.peer_id:
            await self._send(
                {
                    "type": "peer_media",
                    "peer_id": event["peer_id"],
                    "audio": event["audio"],
                    "video": event["video"],
                }
            )

    async def mesh_replaced(self, event: dict[str, Any]) -> None:
        """The same person opened the call again elsewhere; that socket has this slot now."""
        self.slot = None  # not ours any more: leaving must not free it
        await self._leave()
        await self._send({"type": "replaced"})
        await self.close(code=CLOSE_REPLACED)

    async def session_ended(self, event: dict[str, Any]) -> None:
        await self._send({"type": "session_ended"})
        await self.close(code=CLOSE_SESSION_ENDED)

    async def _send(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content))
