"""LiveKit egress control: an audio-only Room Composite Egress pushing RTMP to our ingest."""

from __future__ import annotations

import logging

from django.conf import settings
from livekit import api as livekit_api

logger = logging.getLogger(__name__)

# Twirp codes for "that egress is already gone": stopping it again is not an error.
_ALREADY_GONE = {"not_found", "failed_precondition"}


def _client() -> livekit_api.LiveKitAPI:
    return livekit_api.LiveKitAPI(
        settings.LIVEKIT_API_URL, settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET
    )


async def egress_start(*, room: str, rtmp_url: str) -> livekit_api.EgressInfo:
    """Ask LiveKit to mix ``room``'s audio and push it to ``rtmp_url``.

    Raises ``livekit.api.ServerError`` (a Twirp error) when LiveKit refuses.
    """
    request = livekit_api.RoomCompositeEgressRequest(
        room_name=room,
        audio_only=True,
        stream_outputs=[
            livekit_api.StreamOutput(protocol=livekit_api.StreamProtocol.RTMP, urls=[rtmp_url])
        ],
    )
    async with _client() as lk:
        return await lk.egress.start_room_composite_egress(request)


async def egress_stop(*, egress_id: str) -> None:
    """Stop an egress; one that already ended is fine. Other errors are raised."""
    if not egress_id:
        return
    try:
        async with _client() as lk:
            await lk.egress.stop_egress(livekit_api.StopEgressRequest(egress_id=egress_id))
    except livekit_api.ServerError as exc:
        if exc.code not in _ALREADY_GONE:
            raise
        logger.info("egress %s was already gone (%s)", egress_id, exc.code)


def twirp_reason(exc: Exception) -> str:
    """A sentence for the host about why LiveKit refused."""
    if isinstance(exc, livekit_api.ServerError):
        return f"LiveKit refused to start the audio egress ({exc.code}): {exc.message}"
    return f"LiveKit could not be reached to start the audio egress: {exc}"
