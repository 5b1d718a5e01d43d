"""What the transcript WebSocket clients of a session are told, and how it reaches them.

Every event goes to the Channels group of the session; consumers forward it as JSON. The
payload shapes are the protocol of ``docs/transcript-protocol.md``.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from transcription.models import TranscriptionRun, TranscriptSegment

logger = logging.getLogger(__name__)


def session_group(session_id: int) -> str:
    return f"session.{session_id}"


def segment_payload(segment: TranscriptSegment) -> dict[str, Any]:
    return {
        "utterance_id": segment.utterance_id,
        "text": segment.text,
        "is_final": True,
        "speaker_identity": segment.speaker_identity or None,
        "speaker_name": segment.speaker_name or None,
        "start": round(segment.start_offset, 3),
        "end": round(segment.end_offset, 3),
        "language": segment.language,
        "confidence": segment.confidence,
        # Words as recognised, with their confidences; None once people corrected the text.
        "words": segment.words,
        "revision": segment.revision,
    }


def status_payload(run: TranscriptionRun | None) -> dict[str, Any]:
    if run is None:
        return {
            "type": "transcription_status",
            "status": "NONE",
            "mode": None,
            "run_id": None,
            "provider": None,
            "error": None,
            "error_code": None,
        }
    return {
        "type": "transcription_status",
        "status": run.status,
        "mode": run.mode,
        "run_id": run.pk,
        "provider": run.provider,
        "error": run.error or None,
        "error_code": run.error_code or None,
    }


async def send_status(session_id: int, run: TranscriptionRun | None) -> None:
    """Tell the session's clients about a run; consumers also learn its control channel."""
    await get_channel_layer().group_send(
        session_group(session_id),
        {
            "type": "transcription.status",
            "payload": status_payload(run),
            "control_channel": run.control_channel if run is not None else "",
        },
    )


def send_status_sync(session_id: int, run: TranscriptionRun | None) -> None:
    """``send_status`` after a committed change: best effort, since the change is made and
    pages read the status again when they (re)connect; Redis being away must not fail the
    request that made it."""
    try:
        async_to_sync(send_status)(session_id, run)
    except Exception:
        logger.warning("status of run %s not broadcast (channel layer)", run.pk if run else None)


async def send_transcript(session_id: int, payload: dict[str, Any]) -> None:
    await get_channel_layer().group_send(
        session_group(session_id), {"type": "transcript.event", "payload": payload}
    )


def send_segment_updated_sync(session_id: int, payload: dict[str, Any]) -> None:
    """People changed a stored segment: every open page of the session (live sidebar, finished
    page) replaces it. Best effort: pages that miss it read the change when they reload."""
    try:
        async_to_sync(get_channel_layer().group_send)(
            session_group(session_id),
            {"type": "transcript.updated", "payload": {"type": "segment_updated", **payload}},
        )
    except Exception:
        logger.warning("segment update of session %s not broadcast (channel layer)", session_id)


def send_participants_sync(session_id: int, participants: list[dict[str, Any]]) -> None:
    """Who is in the session now (``participants``: every participant, with ``present``), to
    every open page of it. Best effort: a page that misses it reads the list again when its
    transcript socket (re)connects."""
    try:
        async_to_sync(get_channel_layer().group_send)(
            session_group(session_id),
            {
                "type": "participants.changed",
                "payload": {"type": "participants", "participants": participants},
            },
        )
    except Exception:
        logger.warning("participants of session %s not broadcast (channel layer)", session_id)


def send_run_control_sync(channel: str, message: dict[str, Any]) -> None:
    """A control message (e.g. ``run.stop``) to the runner listening on ``channel``; best
    effort: a runner that misses a stop sees its run STOPPING on its next heartbeat."""
    try:
        async_to_sync(get_channel_layer().send)(channel, message)
    except Exception:
        logger.warning("%s not sent to the runner (channel layer)", message.get("type"))
