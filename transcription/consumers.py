"""The transcript WebSocket: live transcript out, browser audio and speaker reports in.

Protocol and close codes: ``docs/transcript-protocol.md``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation

from identity.services import caption_language_set
from rooms import logging_setup, metrics
from rooms.errors import DomainError
from rooms.ws_dispatch import BatchedDispatchMixin
from sessions_app.services import (
    ACTIVITY_RESOLUTION,
    participant_connected,
    participant_disconnected,
    participant_seen,
    sessions_touch,
)
from sessions_app.ws import (
    CLOSE_MALFORMED,
    CLOSE_SESSION_ENDED,
    QuietCloseMixin,
    SessionSocketMixin,
)
from spaces.access import ACCESS_REVOKED
from spaces.languages import language_label
from transcription import selectors
from transcription.live import broadcast, local
from transcription.live.fanout import encoded, encoded_item, fanout_for
from transcription.models import TranscriptionRun
from transcription.translation import (
    CAPTION_LANGUAGES,
    caption_language_clean,
    segment_translations,
    translation_via,
)

logger = logging.getLogger(__name__)

CLOSE_FLOOD = 4008
CLOSE_BAD_FRAME = 4009

MIN_FRAME_BYTES = 100
MAX_FRAME_BYTES = 64 * 1024
MAX_FRAMES_PER_SECOND = 50
# Frames a well-behaved page sent over a few seconds can arrive bunched (TCP, a busy server):
# the limit is a token bucket refilling at 50/s that absorbs a burst of 2 s worth.
FRAME_BURST = 2 * MAX_FRAMES_PER_SECOND
MAX_TEXT_BYTES = 4096
MAX_SPEAKERS = 50
MAX_IDENTITY_LENGTH = 64
ACTIVITY_EVERY = ACTIVITY_RESOLUTION.total_seconds()


# Handlers that never touch the database. Channels 4.2+ runs a thread-pool hop to close stale
# database connections before EVERY message; for audio frames that hop was a third of the CPU
# per message (FACTS.md), and database_sync_to_async cleans up anyway. (Group messages do not
# come this way: see ``group_message``.)
_NO_DB_MESSAGES = frozenset({"websocket.receive", "websocket.disconnect"})


class TranscriptConsumer(
    BatchedDispatchMixin, QuietCloseMixin, SessionSocketMixin, AsyncWebsocketConsumer
):
    async def dispatch(self, message: dict[str, Any]) -> None:
        if message["type"] in _NO_DB_MESSAGES:
            handler = getattr(self, get_handler_name(message), None)
            if handler is not None:
                await handler(message)
                return
        await super().dispatch(message)

    async def connect(self) -> None:
        self.group = ""
        self.control_channel = ""
        self.run_mode: str | None = None
        self.sent_audio = False
        self.frame_tokens = float(FRAME_BURST)
        self.frame_clock = time.monotonic()
        self.caption_language = ""
        self.heard: set[str] | None = None  # finals sent live while a resync is pending
        # ... and the finals whose translation was, or was in the first history
        self.heard_translated: set[str] | None = None
        self.touched_at = -ACTIVITY_EVERY
        self.present = False  # this socket counts towards its person's presence
        if not await self.open_session_socket():
            return
        await self._touch()
        session, user, slug = self.session, self.user, self.session.slug
        logging_setup.bind(session=slug)
        metrics.ws_opened(self, "transcript")
        self.group = broadcast.session_group(session.pk)
        # The session's events reach this socket through the process's fan-out (held back
        # until the history below is sent, then replayed in order).
        self.fanout = fanout_for(self.channel_layer)
        await self.fanout.join(self.group, self)
        # After joining the fan-out, so this page hears its own return to the list.
        self.present = await self._presence(participant_connected, session=session)
        # Live captions in this person's language (``docs/transcript-protocol.md``).
        self.caption_language = user.caption_language
        history, run, status = await database_sync_to_async(self._opening)()
        await self.send_json(
            {
                "type": "connected",
                "session": slug,
                "identity": user.identity,
                "name": user.name,
                "captions": self._captions_menu(run),
            }
        )
        await self.send_json({"type": "history", "segments": history})
        await self._apply_status(status, run.control_channel if run else "")
        if run is not None and not run.is_finished:
            self.heard = {segment["utterance_id"] for segment in history}
            self.heard_translated = {s["utterance_id"] for s in history if s["translation"]}
            self.resync = asyncio.create_task(self._history_again())
        await self.fanout.live(self.group, self)

    def _captions_menu(self, run: TranscriptionRun | None) -> dict[str, Any]:
        """The caption-language menu: this person's choice, who translates in this session
        (the current run's provider, else the next run's), the languages offered."""
        provider = run.provider if run is not None and not run.is_finished else ""
        with translation.override(self.interface_language or None):
            choices = sorted(
                ([code, language_label(code)] for code in CAPTION_LANGUAGES),
                key=lambda choice: choice[1].casefold(),
            )
        return {
            "language": self.caption_language,
            "via": translation_via(provider or settings.STT_PROVIDER),
            "choices": choices,
        }

    async def _history_again(self) -> None:
        """A final broadcast just before the fan-out join and stored just after the history read
        reached this client neither way (a reconnect in a live run): once the runner has
        flushed everything of before, send what was stored meanwhile as a second ``history``."""
        await asyncio.sleep(settings.TRANSCRIPTION_FLUSH_SECONDS * 2 + 0.5)
        history, _ = await database_sync_to_async(self._history_and_run)()
        heard, self.heard = self.heard or set(), None
        translated, self.heard_translated = self.heard_translated or set(), None
        # Also a translation stored meanwhile and not sent live (the same gap, for it).
        missed = [
            segment
            for segment in history
            if segment["utterance_id"] not in heard
            or (segment["translation"] and segment["utterance_id"] not in translated)
        ]
        if missed and self.group:
            await self.send_json({"type": "history", "segments": missed})

    def _opening(
        self,
    ) -> tuple[list[dict[str, Any]], TranscriptionRun | None, dict[str, Any]]:
        """The history, the current run and its status, read in the database thread (the
        status reads the run's captions from the shared cache: blocking I/O, kept off the
        event loop)."""
        history, run = self._history_and_run()
        return history, run, broadcast.status_payload(run)

    def _history_and_run(self) -> tuple[list[dict[str, Any]], TranscriptionRun | None]:
        """The stored finals, each with its translation into this socket's caption language
        (or None), and the session's current run."""
        language = self.caption_language
        translations = segment_translations(session_id=self.session.pk, language=language)
        segments = []
        for segment in selectors.segment_list(session=self.session):
            stored = translations.get(segment.pk)
            payload = broadcast.segment_payload(segment)
            payload["translation"] = stored.payload(language) if stored else None
            segments.append(payload)
        return segments, selectors.run_current(session=self.session)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        metrics.ws_closed(self)
        await self._leave()
        if self.present:
            self.present = False
            await self._presence(participant_disconnected, session_id=self.session.pk)
        await self.close_session_socket()

    async def access_revoked(self, event: dict[str, Any]) -> None:
        # No more transcript out or audio in from the moment access ended.
        await self._leave()
        await super().access_revoked(event)

    async def _leave(self) -> None:
        """Stop receiving and sending for this client (idempotent)."""
        if self.group:
            group, self.group = self.group, ""
            await self.fanout.leave(group, self)
            if self.sent_audio and self.control_channel:
                self._send_to_run({"type": "audio.leave", "source": self.user.identity})
            self.control_channel = ""

    async def _reject(self, code: int) -> None:
        """Close for bad input; whatever the client still sends before it hears the close
        (Daphne keeps delivering it) is ignored, and it gets no more events."""
        metrics.error(f"ws_close_{code}")
        await self._leave()
        await self.close(code=code)

    # --- client -> server -----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.group:
            return
        if bytes_data is not None:
            await self._on_audio(bytes_data)
        elif text_data is not None:
            await self._on_text(text_data)

    async def _on_audio(self, frame: bytes) -> None:
        fault = self._frame_fault(frame)
        if fault is not None:
            await self._reject(fault)
            return
        self._audio_to_run(frame)

    def take_binary(self, frame: bytes) -> bool:
        """An audio frame handled at once, from Daphne's own read (``rooms.ws_dispatch``); False
        leaves it to ``receive`` (no group yet, or a frame to refuse: closing awaits)."""
        if not self.group or self._frame_fault(frame) is not None:
            return False
        self._audio_to_run(frame)
        return True

    def _frame_fault(self, frame: bytes) -> int | None:
        """The close code a frame earns, else None, and the frame counted against the flood
        limit."""
        size = len(frame)
        if size < MIN_FRAME_BYTES or size > MAX_FRAME_BYTES or size % 2:
            return CLOSE_BAD_FRAME
        now = time.monotonic()
        refill = (now - self.frame_clock) * MAX_FRAMES_PER_SECOND
        self.frame_tokens = min(float(FRAME_BURST), self.frame_tokens + refill)
        self.frame_clock = now
        if self.frame_tokens < 1.0:
            return CLOSE_FLOOD
        self.frame_tokens -= 1.0
        return None

    def _audio_to_run(self, frame: bytes) -> None:
        if self.control_channel and self.run_mode == TranscriptionRun.Mode.BROWSER:
            self.sent_audio = True
            self._send_to_run(
                {
                    "type": "audio.frame",
                    "source": self.user.identity,
                    "name": self.user.name,
                    "pcm": frame,
                }
            )

    async def _on_text(self, text: str) -> None:
        if len(text) > MAX_TEXT_BYTES or len(text.encode()) > MAX_TEXT_BYTES:
            await self._reject(CLOSE_MALFORMED)
            return
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python's stack
            await self._reject(CLOSE_MALFORMED)
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
            await self._touch()
        elif kind == "active_speakers":
            speakers = message.get("speakers")
            if (
                not isinstance(speakers, list)
                or len(speakers) > MAX_SPEAKERS
                or not all(
                    isinstance(s, str) and 0 < len(s) <= MAX_IDENTITY_LENGTH for s in speakers
                )
            ):
                await self._reject(CLOSE_MALFORMED)
                return
            if self.control_channel:
                self._send_to_run(
                    {"type": "speakers.active", "speakers": speakers, "at": time.time()}
                )
        elif kind == "caption_language":
            await self._on_caption_language(message)
        else:
            await self._reject(CLOSE_MALFORMED)

    async def _on_caption_language(self, message: dict[str, Any]) -> None:
        """This person reads captions in another language (or the original) from now on."""
        if set(message) != {"type", "language"}:
            await self._reject(CLOSE_MALFORMED)
            return
        try:
            language = caption_language_clean(message["language"])
        except DomainError:
            await self._reject(CLOSE_MALFORMED)
            return
        # Switched before the stored ones are read: a translation made meanwhile comes live.
        self.caption_language = language
        stored = await database_sync_to_async(self._caption_language_set)(language)
        if self.control_channel:
            # The run reads the languages of the people present again.
            self._send_to_run({"type": "captions.changed"})
        await self.send_json(
            {"type": "caption_language", "language": language, "translations": stored}
        )

    def _caption_language_set(self, language: str) -> list[dict[str, Any]]:
        caption_language_set(user=self.user, language=language)
        return selectors.translation_list(session=self.session, language=language)

    async def _touch(self) -> None:
        """An open session page is activity: it keeps the session from being ended as
        inactive. At most one database write a minute per socket (the page pings every 25 s)."""
        now = time.monotonic()
        if now - self.touched_at >= ACTIVITY_EVERY:
            self.touched_at = now
            await database_sync_to_async(sessions_touch)(session_ids=[self.session.pk])
            if self.present:
                await self._presence(participant_seen, session_id=self.session.pk)

    async def _presence(self, action: Callable[..., object], **kwargs: Any) -> bool:
        """Tell the presence count about this socket (``sessions_app.services``). Presence is
        advisory: with the cache or the database away the socket works on without it."""
        try:
            await database_sync_to_async(action)(
                identity=self.user.identity, channel=self.channel_name, **kwargs
            )
        except Exception as exc:
            logger.warning("presence not updated (%s): %s", action.__name__, exc)
            return False
        return True

    def _send_to_run(self, message: dict[str, Any]) -> None:
        # A run on this socket's own loop (embedded mode) takes it directly; one elsewhere gets
        # it batched with the other sockets' messages (``transcription.live.local``).
        if not local.deliver(self.control_channel, message):
            local.forward(self.channel_layer, self.control_channel, message)

    # --- group events -> client -----------------------------------------------------------

    async def group_message(self, message: dict[str, Any]) -> None:
        """A message of the session's group, from the fan-out (``transcription.live.fanout``)."""
        handler = getattr(self, get_handler_name(message), None) if self.group else None
        if handler is not None:
            await handler(message)

    async def transcript_event(self, event: dict[str, Any]) -> None:
        if self.heard is not None and event["payload"]["is_final"]:
            self.heard.add(event["payload"]["utterance_id"])
        if self.group:
            await self.send(text_data=encoded(event))

    async def transcript_translations(self, event: dict[str, Any]) -> None:
        """Finals in caption languages: to each socket, those in its language only (each
        encoded once per process)."""
        language = self.caption_language
        for index, payload in enumerate(event["payloads"]):
            if not (self.group and language and payload["language"] == language):
                continue
            if self.heard_translated is not None:
                self.heard_translated.add(payload["utterance_id"])
            await self.send(text_data=encoded_item(event, "payloads", index))

    async def transcript_captions(self, event: dict[str, Any]) -> None:
        """What the run translates into changed."""
        if self.group:
            await self.send(text_data=encoded(event))

    async def transcript_updated(self, event: dict[str, Any]) -> None:
        """People corrected a stored segment (``transcription.archive.edits``)."""
        if self.group:
            await self.send(text_data=encoded(event))

    async def participants_changed(self, event: dict[str, Any]) -> None:
        """Someone joined or left the session (``sessions_app.services.participants_changed``)."""
        if self.group:
            await self.send(text_data=encoded(event))

    async def transcription_status(self, event: dict[str, Any]) -> None:
        if self.group:
            await self._apply_status(event["payload"], event.get("control_channel", ""))

    async def session_ended(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "session_ended"})
        await self.close(code=CLOSE_SESSION_ENDED)

    async def _apply_status(self, payload: dict[str, Any], control_channel: str) -> None:
        active = payload["status"] == TranscriptionRun.Status.ACTIVE
        self.control_channel = control_channel if active else ""
        self.run_mode = payload["mode"] if active else None
        if payload.get("error"):
            # The run stores its failure in English (the admin and the API show it so); each
            # page reads it in its own language where the catalogue has it.
            with translation.override(self.interface_language or None):
                payload = {**payload, "error": translation.gettext(payload["error"])}
        await self.send_json(payload)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content))


class TranscriptEditsConsumer(
    BatchedDispatchMixin, QuietCloseMixin, SessionSocketMixin, AsyncWebsocketConsumer
):
    """``/ws/sessions/<slug>/edits/``: corrections of the stored transcript, for pages that
    show it after the session (the finished page). Members only, ENDED sessions included.

    Server → client: ``{"type": "segment_updated", <segment>}`` and ``pong``. Client → server:
    ``{"type": "ping"}`` only; anything else closes with 4002.
    """

    async def connect(self) -> None:
        self.group = ""
        if not await self.open_session_socket(allow_ended=True):
            return
        metrics.ws_opened(self, "edits")
        self.group = broadcast.session_group(self.session.pk)
        self.fanout = fanout_for(self.channel_layer)
        await self.fanout.join(self.group, self)
        await self.fanout.live(self.group, self)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        metrics.ws_closed(self)
        await self._leave()
        await self.close_session_socket()

    async def _leave(self) -> None:
        if self.group:
            group, self.group = self.group, ""
            await self.fanout.leave(group, self)

    async def access_revoked(self, event: dict[str, Any]) -> None:
        await self._leave()
        await super().access_revoked(event)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.group:
            return
        if text_data is not None and len(text_data) <= 64 and _is_ping(text_data):
            await self.send(text_data=json.dumps({"type": "pong"}))
            return
        await self._leave()
        await self.close(code=CLOSE_MALFORMED)

    async def group_message(self, message: dict[str, Any]) -> None:
        if self.group and message.get("type") == "transcript.updated":
            await self.send(text_data=encoded(message))
        elif self.group and message.get("type") == ACCESS_REVOKED:
            await self.access_revoked(message)


def _is_ping(text: str) -> bool:
    try:
        message = json.loads(text)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping" and len(message) == 1
