"""What the transcript WebSocket clients of a session are told, and how it reaches them.

Every event goes to the Channels group of the session; consumers forward it as JSON. The
payload shapes are the protocol of ``docs/transcript-protocol.md``.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache

from transcription.models import TranscriptionRun, TranscriptSegment
from transcription.translation import translation_via

logger = logging.getLogger(__name__)

CAPTIONS_TTL_SECONDS = 24 * 3600
"""How long the captions of a run are kept for the pages that connect while it runs (a run is
stopped long before: a session ends after hours of inactivity)."""


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


def _captions_key(run_id: int) -> str:
    return f"transcription:captions:{run_id}"


def captions_payload(
    languages: set[str] | frozenset[str], since: dict[str, float], via: str
) -> dict[str, Any]:
    """What a run translates into: the targets, since when (session seconds), and by whom."""
    return {
        "languages": sorted(languages),
        "since": {language: since[language] for language in sorted(since)},
        "via": via,
    }


def captions_save(run_id: int, captions: dict[str, Any]) -> None:
    """Remember what ``run_id`` translates into (the shared cache: a run may execute in another
    process than the sockets that report it), for ``status_payload``."""
    cache.set(_captions_key(run_id), captions, CAPTIONS_TTL_SECONDS)


def captions_saved(run_id: int) -> dict[str, Any] | None:
    """What ``captions_save`` last saved for ``run_id`` (None: nothing, or the cache is away)."""
    try:
        saved = cache.get(_captions_key(run_id))
    except Exception:
        logger.warning("captions of run %s not read (cache)", run_id)
        return None
    return saved if isinstance(saved, dict) else None


def captions_of(run: TranscriptionRun) -> dict[str, Any] | None:
    """The captions of ``run`` while it is unfinished (None once finished): what its runner
    saved, else nothing yet (no languages) translated by whoever would translate it."""
    if run.is_finished:
        return None
    return captions_saved(run.pk) or captions_payload(set(), {}, translation_via(run.provider))


_READ = object()


def status_payload(run: TranscriptionRun | None, captions: Any = _READ) -> dict[str, Any]:
    """The ``transcription_status`` of ``run``; ``captions`` as the runner knows them, else
    read (``captions_of``)."""
    if run is None:
        return {
            "type": "transcription_status",
            "status": "NONE",
            "mode": None,
            "run_id": None,
            "provider": None,
            "error": None,
            "error_code": None,
            "captions": None,
        }
    return {
        "type": "transcription_status",
        "status": run.status,
        "mode": run.mode,
        "run_id": run.pk,
        "provider": run.provider,
        "error": run.error or None,
        "error_code": run.error_code or None,
        "captions": captions_of(run) if captions is _READ or run.is_finished else captions,
    }


async def send_status(session_id: int, run: TranscriptionRun | None, captions: Any = _READ) -> None:
    """Tell the session's clients about a run; consumers also learn its control channel.
    The runner passes its ``captions``; other callers (in a thread) let them be read."""
    await get_channel_layer().group_send(
        session_group(session_id),
        {
            "type": "transcription.status",
            "payload": status_payload(run, captions),
            "control_channel": run.control_channel if run is not None else "",
        },
    )


def send_status_sync(session_id: int, run: TranscriptionRun | None) -> None:
    """``send_status`` after a committed change: best effort, since the change is made and
    pages read the status again when they (re)connect; Redis being away must not fail the
    request that made it."""
    try:
        captions = captions_of(run) if run is not None else None
        async_to_sync(send_status)(session_id, run, captions)
    except Exception as exc:
        logger.warning(
            "status of run %s not broadcast (channel layer: %r)", run.pk if run else None, exc
        )


def transcript_message(payload: dict[str, Any]) -> dict[str, Any]:
    """The group message of a transcript event (``send_transcript``)."""
    return {"type": "transcript.event", "payload": payload}


def translations_message(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """The group message of finals in caption languages (``send_translations``)."""
    return {"type": "transcript.translations", "payloads": payloads}


async def send_transcript(session_id: int, payload: dict[str, Any]) -> None:
    await get_channel_layer().group_send(session_group(session_id), transcript_message(payload))


async def send_translations(session_id: int, payloads: list[dict[str, Any]]) -> None:
    """Finals in caption languages, as many as the run has at hand (one group message, whatever
    the number of languages): consumers pass each only to the sockets reading its language
    (``payload["language"]``)."""
    await get_channel_layer().group_send(session_group(session_id), translations_message(payloads))


async def send_captions(session_id: int, captions: dict[str, Any]) -> None:
    """What the run translates into changed (``captions_payload``): to every socket."""
    await get_channel_layer().group_send(
        session_group(session_id),
        {"type": "transcript.captions", "payload": {"type": "captions", **captions}},
    )


def send_segment_updated_sync(session_id: int, payload: dict[str, Any]) -> None:
    """People changed a stored segment: every open page of the session (live sidebar, finished
    page) replaces it. Best effort: pages that miss it read the change when they reload."""
    _group_send_sync(
        session_id,
        {"type": "transcript.updated", "payload": {"type": "segment_updated", **payload}},
        what="segment update",
    )


def send_participants_sync(session_id: int, participants: list[dict[str, Any]]) -> None:
    """Who is in the session now (``participants``: every participant, with ``present``), to
    every open page of it. Best effort: a page that misses it reads the list again when its
    transcript socket (re)connects."""
    _group_send_sync(
        session_id,
        {
            "type": "participants.changed",
            "payload": {"type": "participants", "participants": participants},
        },
        what="participants",
    )


def _group_send_sync(session_id: int, message: dict[str, Any], *, what: str) -> None:
    """``message`` to every socket of the session, from sync code after a committed change;
    a channel layer that fails is logged (``what`` names the message), never raised."""
    try:
        async_to_sync(get_channel_layer().group_send)(session_group(session_id), message)
    except Exception as exc:
        logger.warning("%s of session %s not broadcast (channel layer: %r)", what, session_id, exc)


def send_run_control_sync(channel: str, message: dict[str, Any]) -> None:
    """A control message (e.g. ``run.stop``) to the runner listening on ``channel``; best
    effort: a runner that misses a stop sees its run STOPPING on its next heartbeat."""
    try:
        async_to_sync(get_channel_layer().send)(channel, message)
    except Exception as exc:
        logger.warning("%s not sent to the runner (channel layer: %r)", message.get("type"), exc)
