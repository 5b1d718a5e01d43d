"""Gladia Live v2, spoken to directly with httpx + websockets.

Why not ``gladiaio-sdk``: it is callback based, keeps every unacknowledged chunk
without bound and has no session rollover; this module owns those policies.

Model. The stream's audio is cut into consecutive *Gladia sessions* (``POST
/v2/live``, then a WebSocket to the returned URL); each session owns a contiguous slice
of the stream, starting at ``offset_bytes``, so event times are ``offset + the
session's own time``. Each session is driven by a *lane* task that (re)connects, sends
its audio and reads its messages until it ends. Audio a session has not acknowledged
(``receive_acknowledgments``) stays buffered and is re-sent after a reconnect, so a
dropped socket loses no audio; the server's ``byte_range`` tells what it holds.

* Dropped socket (close code not 1000 and below 4000, or no close at all): reconnect to
  the same URL with exponential backoff; ``reconnect_timeout`` without a working socket
  fails the stream.
* Session over (4xxx, an unrequested 1000, or the URL refused): a new session takes the
  unacknowledged audio and everything after; times continue. Utterances the old
  session had acknowledged but not finalised are lost with it.
* Rollover: after ``max_session_seconds`` of audio (or when the translation languages
  change) a new session is opened and takes all new audio; the old one gets
  ``stop_recording`` and its lane keeps reading its last finals until it closes 1000. If
  Gladia has no slot for a second session (429), the old one is finished first while new
  audio waits.
* Buffer bound: at most ``max_buffer_seconds`` of unacknowledged audio per session. Past
  that the oldest audio is dropped (``dropped_audio_seconds``) and the session, now
  missing a piece, is replaced by a new one whose offset skips the gap.

Translation (``docs/gladia-translation.md``): a session asked for target languages at
``POST /v2/live`` sends a ``translation`` message per final and target, which becomes an
:class:`SttTranslation` keyed like the final. A session's targets cannot change, so
``set_translation_languages`` rolls over to a new session asking for the new set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Literal

import httpx
from django.utils.translation import gettext_noop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from rooms import metrics

from .base import END_OF_EVENTS, SttError, SttStream
from .gladia_protocol import TRANSLATION_LANGUAGES, init_body, transcript_event, translation_event

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.gladia.io"
MAX_SESSION_SECONDS = 3 * 3600 - 5 * 60  # Gladia ends a live session at 3 hours
_MAX_FRAME_BYTES = 512 * 1024  # Gladia closes with 1009 on frames over 1 MiB
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # post_final_transcript of a long session is big

AUTH_MESSAGE = gettext_noop("Gladia rejected the API key")
RATE_LIMIT_MESSAGE = gettext_noop("Gladia concurrency limit reached, try again later")

Outcome = Literal["done", "dropped", "over"]


class _Transient(Exception):
    """A failure worth retrying (network error, timeout, HTTP 5xx)."""


class _SessionGone(Exception):
    """The session URL no longer accepts connections: a new session is needed."""


class _Session:
    """One Gladia Live session and the slice of audio assigned to it.

    ``pending`` holds the session's bytes ``[acked, assigned)``: everything assigned to it
    that the server has not acknowledged. ``sent`` is how far the current socket got.
    """

    def __init__(
        self,
        *,
        id: str,
        url: str,
        offset_bytes: int,
        pending: bytearray,
        finishing: bool,
        targets: frozenset[str] = frozenset(),
    ) -> None:
        self.id = id
        self.url = url
        self.offset_bytes = offset_bytes
        self.pending = pending
        self.acked = 0
        self.sent = 0
        self.finishing = finishing  # send stop_recording once all audio is out
        self.stop_sent = False
        self.broken = False  # audio was dropped from it: it must be replaced
        self.over = False  # the server ended it: it must be replaced
        self.connected = False
        self.ever_sent = False  # has any of its audio gone out on a socket?
        self.messages = 0  # received on the current socket
        self.wake = asyncio.Event()
        self.final_ids: set[str] = set()
        self.targets = targets  # the translation languages it was created with
        self.translation_ids: set[tuple[str, str]] = set()  # (Gladia id, language) sent on
        self.lane: asyncio.Task[None] | None = None  # the task driving it, once opened

    @property
    def assigned(self) -> int:
        return self.acked + len(self.pending)


class GladiaSttStream(SttStream):
    """A live transcription over Gladia Live v2 (see the module docstring).

    ``languages``: ISO 639-1 codes; empty means auto-detect. ``translation_languages``:
    targets for Gladia's real-time translation; codes outside :data:`TRANSLATION_LANGUAGES`
    and the one pinned spoken language are left out (``translation_languages`` then holds
    what Gladia is asked for). Extra counters for metrics: ``reconnects`` (dropped sockets
    and replaced sessions), ``rollovers``, ``sessions_started``, ``dropped_audio_seconds``.
    """

    translates: ClassVar[bool] = True

    def __init__(
        self,
        *,
        api_key: str,
        languages: Sequence[str] = (),
        sample_rate: int = 16000,
        translation_languages: Iterable[str] = (),
        translation_model: Literal["base", "enhanced"] = "base",
        api_url: str = DEFAULT_API_URL,
        max_session_seconds: float = MAX_SESSION_SECONDS,
        http_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        close_timeout: float = 30.0,
        max_buffer_seconds: float = 60.0,
        reconnect_timeout: float = 120.0,
        backoff_initial: float = 0.25,
        backoff_max: float = 5.0,
    ) -> None:
        if not api_key:
            raise ValueError("a Gladia API key is required")
        if translation_model not in ("base", "enhanced"):
            raise ValueError("translation_model must be 'base' or 'enhanced'")
        super().__init__(sample_rate=sample_rate)
        self.api_key = api_key
        self.api_url = api_url.rstrip("/")
        self.languages = list(languages)
        self.translation_model = translation_model
        self.translation_languages = self._targets_for(translation_languages)
        self._translated_bytes: dict[str, int] = {}
        self.http_timeout = http_timeout
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.reconnect_timeout = reconnect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.rollovers = 0
        self.sessions_started = 0
        self.dropped_audio_seconds = 0.0
        self._bytes_per_second = 2 * sample_rate
        self._max_session_bytes = int(max_session_seconds * self._bytes_per_second)
        self._max_buffer_bytes = int(max_buffer_seconds * self._bytes_per_second)
        self._http: httpx.AsyncClient | None = None
        self._current: _Session | None = None
        self._lanes: set[asyncio.Task[None]] = set()
        self._rollover: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._failure: SttError | None = None

    # --- public API --------------------------------------------------------------------

    async def start(self) -> None:
        """Create the first Gladia session and connect to it.

        Raises :class:`SttError`: ``"auth"`` (HTTP 401/403), ``"rate_limited"`` (429) or
        ``"provider"`` (anything else, including Gladia being unreachable).
        """
        if self._http is not None:
            raise RuntimeError("start() was already called")
        self._http = httpx.AsyncClient(timeout=self.http_timeout)
        targets = self.translation_languages
        try:
            session_id, url = await self._create_session(targets)
            ws = await self._connect(url)
        except _Transient as exc:
            await self._http.aclose()
            raise SttError(
                "provider", gettext_noop("Could not reach Gladia, try again later")
            ) from exc
        except _SessionGone as exc:
            await self._http.aclose()
            raise SttError("provider", gettext_noop("Gladia refused the live session")) from exc
        except BaseException:
            await self._http.aclose()
            raise
        session = _Session(
            id=session_id,
            url=url,
            offset_bytes=0,
            pending=bytearray(),
            finishing=False,
            targets=targets,
        )
        self._current = session
        self._spawn_lane(session, ws)
        self._roll_for_languages()  # in case they changed while it started

    async def send_audio(self, pcm: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        session = self._current
        if session is None or self._closing:
            raise RuntimeError("send_audio() needs a started, unclosed stream")
        if len(pcm) % 2:
            raise ValueError("PCM16 audio must have an even number of bytes")
        if not pcm:
            return
        self._accepted_bytes += len(pcm)
        session.pending += pcm
        for language in session.targets:  # from integer bytes: float sums drift
            total = self._translated_bytes.get(language, 0) + len(pcm)
            self._translated_bytes[language] = total
            self.translation_audio_seconds[language] = total / self._bytes_per_second
        excess = len(session.pending) - self._max_buffer_bytes
        if excess > 0:
            self._shed(session, excess)
        session.wake.set()
        if self._rollover is None and session.assigned >= self._max_session_bytes:
            self._rollover = asyncio.create_task(self._roll_over())

    async def set_translation_languages(self, languages: Iterable[str]) -> None:
        """Translate into ``languages`` from now on (filtered as in the class docstring).

        Gladia cannot change a live session's configuration, so a changed set means a
        rollover: a new session asking for it takes all new audio, while the old one
        finishes its finals and translations with the old set. An unchanged set does
        nothing; a rollover already under way is followed by another if it asked for an
        older set.
        """
        targets = self._targets_for(languages)
        if targets != self.translation_languages:
            self.translation_languages = targets
            self._roll_for_languages()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = self._closing = True
        rollover = self._rollover
        if rollover is not None and not rollover.done():
            if self._current is not None and self._current.lane is None:
                # A sequential switch holds audio for a session it has yet to open.
                await asyncio.wait({rollover}, timeout=self.close_timeout)
            # Otherwise the current session is well inside its limit: it takes the rest.
            await self._cancel({rollover})
        if self._current is not None:
            self._current.finishing = True
            self._current.wake.set()
        if self._lanes:
            _, late = await asyncio.wait(set(self._lanes), timeout=self.close_timeout)
            if late:
                logger.warning("Gladia did not finish within %.0f s; giving up", self.close_timeout)
                await self._cancel(late)
        if self._http is not None:
            await self._http.aclose()
        if self._failure is None:
            self._events.put_nowait(END_OF_EVENTS)

    # --- sessions ----------------------------------------------------------------------

    def _targets_for(self, languages: Iterable[str]) -> frozenset[str]:
        wanted = {str(code).lower() for code in languages}
        if unknown := wanted - TRANSLATION_LANGUAGES:
            logger.warning("Gladia cannot translate into %s", ", ".join(sorted(unknown)))
        pinned = set(self.languages) if len(self.languages) == 1 else set()
        return frozenset((wanted & TRANSLATION_LANGUAGES) - pinned)

    def _roll_for_languages(self) -> None:
        """Roll over if the current session translates into another set than wanted."""
        current = self._current
        if (
            current is not None
            and current.targets != self.translation_languages
            and self._rollover is None
            and not self._closing
            and self._failure is None
        ):
            self._rollover = asyncio.create_task(self._roll_over())

    def _init_body(self, targets: frozenset[str]) -> dict[str, Any]:
        return init_body(
            sample_rate=self.sample_rate,
            languages=self.languages,
            targets=targets,
            translation_model=self.translation_model,
        )

    async def _create_session(self, targets: frozenset[str]) -> tuple[str, str]:
        """``POST /v2/live``; returns ``(id, url)``.

        Raises :class:`SttError` for answers that retrying will not fix, ``_Transient``
        for the rest.
        """
        assert self._http is not None
        try:
            response = await self._http.post(
                f"{self.api_url}/v2/live",
                headers={"x-gladia-key": self.api_key},
                json=self._init_body(targets),
            )
        except httpx.HTTPError as exc:
            raise _Transient(f"POST /v2/live failed: {exc!r}") from exc
        status = response.status_code
        if status in (401, 403):
            raise SttError("auth", AUTH_MESSAGE)
        if status == 429:
            raise SttError("rate_limited", RATE_LIMIT_MESSAGE)
        if status >= 500 or status == 408:
            raise _Transient(f"POST /v2/live answered {status}")
        if status >= 300:
            logger.error("Gladia refused the session (%s): %s", status, response.text[:500])
            raise SttError("provider", f"Gladia refused to start a session (HTTP {status})")
        try:
            payload = response.json()
            session_id, url = str(payload["id"]), str(payload["url"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SttError("provider", gettext_noop("Gladia sent an unexpected reply")) from exc
        self.sessions_started += 1
        return session_id, url

    async def _connect(self, url: str) -> ClientConnection:
        try:
            return await connect(
                url,
                open_timeout=self.connect_timeout,
                max_size=_MAX_MESSAGE_BYTES,
                close_timeout=5,
            )
        except InvalidStatus as exc:
            if 400 <= exc.response.status_code < 500:
                raise _SessionGone(str(exc)) from exc
            raise _Transient(str(exc)) from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise _Transient(repr(exc)) from exc

    def _spawn_lane(self, session: _Session, ws: ClientConnection | None) -> None:
        lane = asyncio.create_task(self._lane(session, ws), name=f"gladia-{session.id}")
        session.lane = lane
        self._lanes.add(lane)
        lane.add_done_callback(self._lanes.discard)

    async def _roll_over(self) -> None:
        """Move new audio to a fresh session: before the current one reaches 3 hours, or
        to ask for other translation languages (those wanted when it starts).

        Normally the new session opens first and the old one finishes alongside it. If
        Gladia refuses a second concurrent session (429), the switch is sequential: new
        audio waits in a buffer while the old session finishes, then goes to a new one.
        """
        targets = self.translation_languages
        try:
            try:
                session_id, url = await self._create_session_patiently(targets)
            except SttError as error:
                if error.code != "rate_limited":
                    raise
                logger.warning("Gladia has no slot for a rollover session; switching in turn")
                await self._roll_over_sequentially(targets)
                return
        except SttError as error:
            self._fail(error)
            return
        new = self._switch(targets)
        new.id, new.url = session_id, url
        self._rollover = None
        self._spawn_lane(new, None)
        self._roll_for_languages()

    async def _roll_over_sequentially(self, targets: frozenset[str]) -> None:
        old = self._current
        new = self._switch(targets)
        if old is not None and old.lane is not None:
            await asyncio.wait({old.lane})
        new.id, new.url = await self._create_session_patiently(targets)
        self._rollover = None
        self._spawn_lane(new, None)
        self._roll_for_languages()

    def _switch(self, targets: frozenset[str]) -> _Session:
        """Finish the current session; new audio goes to a new, not yet opened one."""
        old = self._current
        assert old is not None
        new = _Session(
            id="",
            url="",
            offset_bytes=old.offset_bytes + old.assigned,
            pending=bytearray(),
            finishing=False,
            targets=targets,
        )
        old.finishing = True
        old.wake.set()
        self._current = new
        self.rollovers += 1
        return new

    async def _create_session_patiently(self, targets: frozenset[str]) -> tuple[str, str]:
        """``_create_session``, retrying transient failures until cancelled."""
        delay = self.backoff_initial
        while True:
            try:
                return await self._create_session(targets)
            except _Transient as exc:
                # A rollover starts minutes before the limit: there is time to retry.
                logger.warning("Gladia rollover failed (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)

    def _replace(self, old: _Session, session_id: str, url: str) -> _Session:
        """Hand ``old``'s unacknowledged audio (and its role) to a new session."""
        new = _Session(
            id=session_id,
            url=url,
            offset_bytes=old.offset_bytes + old.acked,
            pending=old.pending,
            finishing=old.finishing,
            targets=old.targets,
        )
        new.lane = old.lane
        old.pending = bytearray()
        if self._current is old:
            self._current = new
        return new

    def _shed(self, session: _Session, excess: int) -> None:
        """Drop the oldest ``excess`` buffered bytes to bound memory."""
        excess += excess % 2
        del session.pending[:excess]
        if not session.ever_sent:
            # The server has none of this session's audio: it simply starts later.
            session.offset_bytes += excess
        else:
            in_flight = session.sent - session.acked
            session.acked += excess
            session.sent = max(session.sent, session.acked)
            if session.connected and excess <= in_flight:
                # Delivered on a live socket, the acks are just late: nothing is lost.
                return
            session.broken = True  # a hole in its audio: only a new session can go on
        if self.dropped_audio_seconds == 0:
            logger.warning("Gladia unreachable for too long; dropping buffered audio")
        self.dropped_audio_seconds += excess / self._bytes_per_second

    # --- lanes -------------------------------------------------------------------------

    async def _lane(self, session: _Session, ws: ClientConnection | None) -> None:
        try:
            await self._drive(session, ws)
        except SttError as error:
            self._fail(error)
        except Exception:
            logger.exception("Gladia session %s failed", session.id)
            self._fail(
                SttError("provider", gettext_noop("Transcription with Gladia failed unexpectedly"))
            )

    async def _drive(self, session: _Session, ws: ClientConnection | None) -> None:
        """Keep ``session`` (and its replacements) going until it has finished."""
        failing_since: float | None = None
        delay = self.backoff_initial

        async def back_off(reason: str) -> None:
            nonlocal failing_since, delay
            now = time.monotonic()
            failing_since = failing_since or now
            if now - failing_since > self.reconnect_timeout:
                logger.error("Giving up on Gladia: %s", reason)
                raise SttError("provider", gettext_noop("Lost the connection to Gladia"))
            logger.warning("Gladia: %s; retrying in %.1f s", reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

        while True:
            if session.over or session.broken:
                if session.finishing and not session.pending:
                    return  # nothing left that a new session could transcribe
                try:
                    session_id, url = await self._create_session(session.targets)
                except _Transient as exc:
                    await back_off(str(exc))
                    continue
                session = self._replace(session, session_id, url)
                self.reconnects += 1
                metrics.stt_reconnected("gladia")
            if ws is None:
                try:
                    ws = await self._connect(session.url)
                except _SessionGone as exc:
                    session.over = True
                    await back_off(f"session refused ({exc})")
                    continue
                except _Transient as exc:
                    await back_off(f"cannot connect ({exc})")
                    continue
            outcome = await self._pump(session, ws)
            ws = None
            if session.messages:
                # A socket that carried messages worked: later trouble starts afresh.
                failing_since, delay = None, self.backoff_initial
            if outcome == "done":
                return
            if outcome == "over":
                session.over = True
                if not session.messages:
                    await back_off("session ended at once")
            else:
                self.reconnects += 1
                metrics.stt_reconnected("gladia")
                await back_off("socket dropped")

    async def _pump(self, session: _Session, ws: ClientConnection) -> Outcome:
        """Run one connection: send audio, read messages, report how it ended."""
        session.sent = session.acked  # whatever was not acknowledged goes again
        session.stop_sent = False
        session.messages = 0
        session.connected = True
        reader = asyncio.create_task(self._read(session, ws))
        writer = asyncio.create_task(self._write(session, ws))
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if writer.done() and not isinstance(writer.exception(), ConnectionClosed | None):
                writer.result()  # a bug: raise it
            await reader
        finally:
            session.connected = False
            await self._cancel({reader, writer})
            await ws.close()
        code = ws.close_code if ws.close_code is not None else 1006
        if session.broken:
            return "over"
        if code == 1000:
            return "done" if session.stop_sent else "over"
        if 4000 <= code < 5000:
            logger.warning("Gladia ended session %s with %s", session.id, code)
            return "over"
        logger.warning("Gladia socket for %s closed with %s; reconnecting", session.id, code)
        return "dropped"

    async def _write(self, session: _Session, ws: ClientConnection) -> None:
        while True:
            if session.broken:
                await ws.close(1000, "abandoned")
                return
            session.sent = max(session.sent, session.acked)
            if session.sent < session.assigned:
                position = session.sent
                begin = position - session.acked
                chunk = bytes(session.pending[begin : begin + _MAX_FRAME_BYTES])
                session.ever_sent = True
                await ws.send(chunk)
                # An ack may have overtaken this send (it moves ``sent`` too).
                session.sent = max(session.sent, position + len(chunk))
                continue
            if session.finishing and not session.stop_sent:
                await ws.send(json.dumps({"type": "stop_recording"}))
                session.stop_sent = True
                continue
            session.wake.clear()
            await session.wake.wait()

    async def _read(self, session: _Session, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                session.messages += 1
                if isinstance(raw, str):
                    self._on_message(session, raw)

    def _on_message(self, session: _Session, raw: str) -> None:
        try:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "transcript":
                self._on_transcript(session, message["data"])
            elif kind == "audio_chunk" and message.get("acknowledged"):
                self._on_ack(session, int(message["data"]["byte_range"][1]))
            elif kind == "translation":
                self._on_translation(session, message)
            elif kind == "error" or message.get("acknowledged") is False:
                logger.warning("Gladia reported an error: %s", raw[:500])
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            logger.warning("Ignoring a malformed Gladia message: %s", raw[:500])

    def _on_ack(self, session: _Session, end: int) -> None:
        end = min(end, session.assigned)
        if end > session.acked:
            del session.pending[: end - session.acked]
            session.acked = end
            session.sent = max(session.sent, end)

    def _on_transcript(self, session: _Session, data: dict[str, Any]) -> None:
        gladia_id = str(data["id"])
        if gladia_id in session.final_ids:
            return  # a re-sent final / late partial of a finished utterance
        event = transcript_event(
            data,
            session_id=session.id,
            offset=session.offset_bytes / self._bytes_per_second,
            languages=self.languages,
        )
        if event is None:
            return
        if event.is_final:
            session.final_ids.add(gladia_id)
        self._events.put_nowait(event)

    def _on_translation(self, session: _Session, message: dict[str, Any]) -> None:
        data, error = message.get("data"), message.get("error")
        if error or data is None:
            reason = error.get("message") if isinstance(error, dict) else error
            logger.warning("Gladia could not translate in %s: %s", session.id, str(reason)[:300])
            metrics.error("stt_translation")
            return
        event = translation_event(
            data, session_id=session.id, offset=session.offset_bytes / self._bytes_per_second
        )
        key = (str(data["utterance_id"]), event.language) if event is not None else None
        if event is None or key in session.translation_ids:
            return  # empty, or re-sent
        session.translation_ids.add(key)
        self._events.put_nowait(event)

    # --- failure -----------------------------------------------------------------------

    def _fail(self, error: SttError) -> None:
        """Stop everything and make ``events()`` raise ``error``."""
        if self._failure is not None:
            return
        self._failure = error
        self._events.put_nowait(error)
        me = asyncio.current_task()
        for task in [*self._lanes, self._rollover]:
            if task is not None and task is not me:
                task.cancel()

    @staticmethod
    async def _cancel(tasks: set[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
