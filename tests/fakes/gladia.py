"""A protocol-faithful fake of Gladia's Live v2 API, for tests and local end-to-end runs.

In-process::

    async with FakeGladia(api_key="k", script=["hello there"]) as fake:
        stream = GladiaSttStream(api_key="k", api_url=fake.api_url, languages=["en"])

Standalone (prints the API URL, serves until interrupted)::

    python -m tests.fakes.gladia --port 8765 --api-key test-key

Two servers: a tiny HTTP/1.1 one for ``POST /v2/live`` (websockets' server only speaks
GET) and a websockets one for the session sockets ``/v2/live/<id>``.

Transcripts are a deterministic function of the audio a session has *received*:
utterance ``n`` covers session audio ``[n*U, (n+1)*U)`` (``U = utterance_seconds``); as
audio arrives the fake sends ``partials_per_utterance`` partials spread over the
utterance, then its final (``start = n*U + 0.1``, ``end = (n+1)*U - 0.1``, text from
``script`` or ``"utterance n"``). ``stop_recording`` finalises the remaining audio, then
sends ``post_final_transcript``, ``end_session`` and closes 1000.

Message gating follows ``messages_config`` with lenient defaults: partials only when
``receive_partial_transcripts``, acknowledgments only when
``receive_acknowledgments``; finals, speech, realtime-processing (translations),
post-processing and lifecycle messages unless explicitly turned off.

Translation (``docs/gladia-translation.md`` §2): a session whose init asked for
``realtime_processing.translation`` sends, after each final transcript (and before its
``speech_end``), one ``translation`` message per ``translation_config.target_languages``
entry, in that order, with ``data.utterance_id`` = the final's ``data.id``. The text is
``translations[(original text, target)]`` if the test set one, else ``"[<target>] <text>"``;
a target equal to the spoken language gets the original text (``identity_translations``)
or nothing. ``translation_delay`` sends them that many seconds later (the next partials
may overtake them); ``fail_translations`` sends ``{"error": {...}, "data": null}``
instead. ``post_final_transcript`` then carries the ``translation`` block.
The fake's own policy (Gladia documents neither case): an init with ``translation: true``
but no non-empty ``translation_config.target_languages``, or with a code outside Gladia's
translation enum, is refused with HTTP 400 and a message naming the field.

Faults (:meth:`FakeGladia.fault`) fire on the next audio frame of a matching session
once its audio would pass ``after_seconds``; that frame is discarded unacknowledged,
the way a frame in flight is lost when a real connection dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

BYTES_PER_SECOND = 16000 * 2
_CODES = """
af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi
hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn
no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi
wo yi yo zh
"""
TRANSLATION_CODES = frozenset(_CODES.split())
"""Gladia's ``LiveV2TranslationLanguageCode`` (its SDK), kept apart from the client's copy."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FakeSession:
    """What the fake knows and records about one Live session."""

    id: str
    request: dict[str, Any]
    url: str
    received_bytes: int = 0
    """Audio bytes accepted (and acknowledged) by this session, across connections."""
    audio: bytearray = field(default_factory=bytearray)
    """The accepted audio itself, when the fake was made with ``record_audio=True``."""
    finals: list[dict[str, Any]] = field(default_factory=list)
    """The ``data`` of every final transcript message sent, in order."""
    partials_sent: int = 0
    connections: int = 0
    stop_received: bool = False
    ended: bool = False
    close_codes: list[int] = field(default_factory=list)
    next_utterance: int = 0
    partials_done: int = 0
    utterance_uuid: str | None = None
    ws: ServerConnection | None = None
    targets: list[str] = field(default_factory=list)
    """``translation_config.target_languages`` when the init asked for translation."""
    translations: list[dict[str, Any]] = field(default_factory=list)
    """The ``data`` of every translation message sent (repeats once), in order."""
    translation_errors: int = 0
    """Translation messages sent with an ``error`` and ``data: null``."""
    pending: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def audio_seconds(self) -> float:
        return self.received_bytes / BYTES_PER_SECOND

    def wants(self, option: str, default: bool) -> bool:
        value = (self.request.get("messages_config") or {}).get(option)
        return default if value is None else bool(value)


@dataclass
class _Fault:
    after_seconds: float
    code: int | None
    session_id: str | None


class FakeGladia:
    """The fake server; use as an async context manager or ``start()``/``stop()``.

    ``max_sessions`` limits concurrently open sessions (HTTP 429 beyond it);
    ``record_audio`` keeps every session's audio in :attr:`FakeSession.audio`;
    ``repeat_finals`` sends every final transcript and translation message twice (as after
    a resume). ``translations``, ``translation_delay``, ``fail_translations`` and
    ``identity_translations`` shape translations (see the module docstring); the last three
    may be changed while it runs.
    """

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        ws_port: int = 0,
        script: list[str] | None = None,
        utterance_seconds: float = 1.0,
        partials_per_utterance: int = 2,
        max_sessions: int | None = None,
        record_audio: bool = False,
        repeat_finals: bool = False,
        translations: dict[tuple[str, str], str] | None = None,
        translation_delay: float = 0.0,
        fail_translations: bool = False,
        identity_translations: bool = True,
    ) -> None:
        self.api_key = api_key
        self.translations = dict(translations or {})
        self.translation_delay = translation_delay
        self.fail_translations = fail_translations
        self.identity_translations = identity_translations
        self.record_audio = record_audio
        self.repeat_finals = repeat_finals
        self.host = host
        self.script = script
        self.utterance_seconds = utterance_seconds
        self.partials_per_utterance = partials_per_utterance
        self.max_sessions = max_sessions
        self.sessions: dict[str, FakeSession] = {}
        self.init_requests = 0
        self.refuse_connections = False
        """While true, session sockets are refused (HTTP 503), as during an outage."""
        self._port = port
        self._ws_port = ws_port
        self._faults: list[_Fault] = []
        self._http: asyncio.Server | None = None
        self._ws: Server | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._ws = await serve(
            self._handle_socket, self.host, self._ws_port, process_request=self._check_path
        )
        self._ws_port = self._ws.sockets[0].getsockname()[1]
        self._http = await asyncio.start_server(self._handle_http, self.host, self._port)
        self._port = self._http.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            await self._http.wait_closed()
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    # --- test controls and records --------------------------------------------------------

    def fault(
        self,
        *,
        after_seconds: float = 0.0,
        code: int | None = None,
        session_id: str | None = None,
    ) -> None:
        """Schedule one connection failure.

        ``code=None`` aborts the TCP connection (the client sees 1006); a 4xxx code
        closes with it and ends the session; any other code closes with it and leaves
        the session open for a reconnect. It fires on the first matching session
        (``session_id``, or any) whose received audio would pass ``after_seconds``.
        """
        self._faults.append(_Fault(after_seconds, code, session_id))

    @property
    def pending_faults(self) -> int:
        return len(self._faults)

    @property
    def session_list(self) -> list[FakeSession]:
        """Sessions in creation order."""
        return list(self.sessions.values())

    @property
    def total_received_bytes(self) -> int:
        return sum(s.received_bytes for s in self.sessions.values())

    # --- HTTP: POST /v2/live ---------------------------------------------------------------

    async def _handle_http(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status, payload = self._init_session(method, path, headers, body)
            data = json.dumps(payload).encode()
            writer.write(
                f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ValueError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _init_session(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        if method != "POST" or path.split("?")[0] != "/v2/live":
            return 404, {"statusCode": 404, "message": "Not Found"}
        self.init_requests += 1
        if headers.get("x-gladia-key") != self.api_key:
            return 401, {"statusCode": 401, "message": "Invalid or missing x-gladia-key"}
        active = sum(1 for s in self.sessions.values() if not s.ended)
        if self.max_sessions is not None and active >= self.max_sessions:
            return 429, {"statusCode": 429, "message": "Too many concurrent sessions"}
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, {"statusCode": 400, "message": "Invalid JSON body"}
        expected = {"encoding": "wav/pcm", "bit_depth": 16, "sample_rate": 16000, "channels": 1}
        if any(request.get(key, value) != value for key, value in expected.items()):
            return 400, {"statusCode": 400, "message": "The fake only supports 16 kHz PCM16 mono"}
        targets = _translation_targets(request)
        if isinstance(targets, str):
            return 400, {"statusCode": 400, "message": targets}
        session_id = str(uuid.uuid4())
        url = f"ws://{self.host}:{self._ws_port}/v2/live/{session_id}"
        self.sessions[session_id] = FakeSession(
            id=session_id, request=request, url=url, targets=targets
        )
        return 201, {"id": session_id, "created_at": _now(), "url": url}

    # --- WebSocket: /v2/live/<id> ----------------------------------------------------------

    def _session_for(self, path: str) -> FakeSession | None:
        prefix = "/v2/live/"
        if not path.startswith(prefix):
            return None
        return self.sessions.get(path[len(prefix) :].split("?")[0])

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse_connections:
            return connection.respond(503, "Service unavailable\n")
        session = self._session_for(request.path)
        if session is None or session.ended:
            return connection.respond(404, "Session not found\n")
        return None

    async def _handle_socket(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        session = self._session_for(ws.request.path)
        assert session is not None
        if session.ws is not None:
            # A client reconnecting before we noticed its old socket died: the newest wins.
            await session.ws.close(1001)
        session.ws = ws
        session.connections += 1
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    if await self._audio(session, ws, message):
                        return
                else:
                    command = json.loads(message)
                    if command.get("type") == "stop_recording":
                        await self._stop(session, ws)
                        return
        except ConnectionClosed:
            pass
        finally:
            if ws.close_code is not None:
                session.close_codes.append(ws.close_code)
            if session.ws is ws:
                session.ws = None

    async def _audio(self, session: FakeSession, ws: ServerConnection, chunk: bytes) -> bool:
        """Accept one audio frame; returns True if a fault ended the connection."""
        if await self._maybe_fault(session, ws, len(chunk)):
            return True
        start = session.received_bytes
        session.received_bytes += len(chunk)
        if self.record_audio:
            session.audio += chunk
        if session.wants("receive_acknowledgments", False):
            await self._send(
                ws,
                session,
                "audio_chunk",
                acknowledged=True,
                error=None,
                data={
                    "byte_range": [start, session.received_bytes],
                    "time_range": [
                        round(start / BYTES_PER_SECOND, 3),
                        round(session.received_bytes / BYTES_PER_SECOND, 3),
                    ],
                },
            )
        await self._transcribe(session, ws, final_flush=False)
        return False

    async def _maybe_fault(self, session: FakeSession, ws: ServerConnection, size: int) -> bool:
        after = (session.received_bytes + size) / BYTES_PER_SECOND
        for fault in self._faults:
            if fault.session_id not in (None, session.id) or after <= fault.after_seconds:
                continue
            self._faults.remove(fault)
            if fault.code is None:
                ws.transport.abort()
                session.close_codes.append(1006)
                return True
            if 4000 <= fault.code < 5000:
                session.ended = True
            await ws.close(fault.code, "fault injected by the test")
            return True
        return False

    def _words(self, n: int) -> list[str]:
        if self.script:
            return self.script[n % len(self.script)].split()
        return ["utterance", str(n)]

    async def _transcribe(
        self, session: FakeSession, ws: ServerConnection, *, final_flush: bool
    ) -> None:
        unit = self.utterance_seconds
        lead = min(0.1, unit / 10)
        parts = self.partials_per_utterance
        while True:
            now = session.audio_seconds
            n = session.next_utterance
            base = n * unit
            due_partial = base + unit * (session.partials_done + 1) / (parts + 1)
            if session.partials_done < parts and now >= due_partial:
                await self._utterance_message(session, ws, n, base + lead, now, final=False)
                session.partials_done += 1
                continue
            if now >= base + unit:
                await self._utterance_message(
                    session, ws, n, base + lead, base + unit - lead, final=True
                )
                continue
            if final_flush and now > base:
                start = base + min(lead, (now - base) / 4)
                await self._utterance_message(session, ws, n, start, now, final=True)
            return

    async def _utterance_message(
        self,
        session: FakeSession,
        ws: ServerConnection,
        n: int,
        start: float,
        end: float,
        *,
        final: bool,
    ) -> None:
        if session.utterance_uuid is None:
            session.utterance_uuid = str(uuid.uuid4())
            if session.wants("receive_speech_events", True):
                await self._send(
                    ws, session, "speech_start", data={"time": round(start, 3), "channel": 0}
                )
        words = self._words(n)
        if final:
            text = " ".join(words)
        else:
            shown = math.ceil(
                len(words) * (session.partials_done + 1) / (self.partials_per_utterance + 1)
            )
            text = " ".join(words[:shown])
        language = ((session.request.get("language_config") or {}).get("languages") or ["en"])[0]
        data = {
            "id": session.utterance_uuid,
            "is_final": final,
            "utterance": {
                "text": text,
                "start": round(start, 3),
                "end": round(end, 3),
                "language": language,
                "confidence": 0.9,
                "channel": 0,
                "words": [],
            },
        }
        if final:
            if session.wants("receive_final_transcripts", True):
                session.finals.append(data)
                for _ in range(2 if self.repeat_finals else 1):
                    await self._send(ws, session, "transcript", data=data)
            if session.targets and session.wants("receive_realtime_processing_events", True):
                await self._translate(session, ws, data)
            if session.wants("receive_speech_events", True):
                await self._send(
                    ws, session, "speech_end", data={"time": round(end, 3), "channel": 0}
                )
            session.next_utterance += 1
            session.partials_done = 0
            session.utterance_uuid = None
        elif session.wants("receive_partial_transcripts", False):
            session.partials_sent += 1
            await self._send(ws, session, "transcript", data=data)

    async def _stop(self, session: FakeSession, ws: ServerConnection) -> None:
        session.stop_received = True
        duration = round(session.audio_seconds, 3)
        if session.wants("receive_acknowledgments", False):
            await self._send(
                ws,
                session,
                "stop_recording",
                acknowledged=True,
                error=None,
                data={"recording_duration": duration, "recording_left_to_process": 0},
            )
        await self._transcribe(session, ws, final_flush=True)
        await asyncio.gather(*session.pending, return_exceptions=True)
        if session.wants("receive_post_processing_events", True):
            utterances = [f["utterance"] for f in session.finals]
            post_final: dict[str, Any] = {
                "metadata": {
                    "audio_duration": duration,
                    "number_of_distinct_channels": 1,
                    "billing_time": duration,
                    "transcription_time": 0.1,
                },
                "transcription": {
                    "full_transcript": " ".join(u["text"] for u in utterances),
                    "languages": sorted({u["language"] for u in utterances}),
                    "utterances": utterances,
                },
            }
            if session.targets:
                post_final["translation"] = _translation_block(session)
            await self._send(ws, session, "post_final_transcript", data=post_final)
        if session.wants("receive_lifecycle_events", True):
            await self._send(ws, session, "end_session")
        session.ended = True
        await ws.close(1000)

    async def _translate(
        self, session: FakeSession, ws: ServerConnection, final: dict[str, Any]
    ) -> None:
        """Send the translations of ``final`` (now, or later in a task ``_stop`` awaits)."""
        original = final["utterance"]
        bodies: list[dict[str, Any]] = []
        for target in session.targets:
            same = target == original["language"]
            if same and not self.identity_translations:
                continue
            if self.fail_translations:
                error = {"status_code": 500, "exception": "TranslationError"}
                bodies.append({"error": {**error, "message": "fake failure"}, "data": None})
                continue
            default = original["text"] if same else f"[{target}] {original['text']}"
            text = self.translations.get((original["text"], target), default)
            translated = {**original, "text": text, "language": target, "words": []}
            bodies.append(
                {
                    "error": None,
                    "data": {
                        "utterance_id": final["id"],
                        "utterance": original,
                        "original_language": original["language"],
                        "target_language": target,
                        "translated_utterance": translated,
                    },
                }
            )
        if self.translation_delay <= 0:
            await self._send_translations(session, ws, bodies)
            return
        task = asyncio.create_task(self._send_translations(session, ws, bodies, later=True))
        session.pending.add(task)
        task.add_done_callback(session.pending.discard)

    async def _send_translations(
        self,
        session: FakeSession,
        ws: ServerConnection,
        bodies: list[dict[str, Any]],
        *,
        later: bool = False,
    ) -> None:
        if later:
            await asyncio.sleep(self.translation_delay)
        with contextlib.suppress(ConnectionClosed):  # lost with its socket, like a real one
            for body in bodies:
                for _ in range(2 if self.repeat_finals else 1):
                    await self._send(ws, session, "translation", **body)
                if body["data"] is None:
                    session.translation_errors += 1
                else:
                    session.translations.append(body["data"])

    async def _send(
        self, ws: ServerConnection, session: FakeSession, kind: str, **body: Any
    ) -> None:
        message = {"type": kind, "session_id": session.id, "created_at": _now(), **body}
        await ws.send(json.dumps(message))


def _translation_targets(request: dict[str, Any]) -> list[str] | str:
    """The init's translation targets ([] without translation), or why it is refused."""
    processing = request.get("realtime_processing") or {}
    if not isinstance(processing, dict):
        return "realtime_processing must be an object"
    if not processing.get("translation"):
        return []
    config = processing.get("translation_config")
    config = config if isinstance(config, dict) else {}
    targets = config.get("target_languages")
    if not isinstance(targets, list) or not targets:
        return "translation_config.target_languages is required when translation is enabled"
    if unknown := [code for code in targets if code not in TRANSLATION_CODES]:
        return f"translation_config.target_languages: unsupported language codes {unknown}"
    if config.get("model", "base") not in ("base", "enhanced"):
        return "translation_config.model must be one of base, enhanced"
    return [str(code) for code in targets]


def _translation_block(session: FakeSession) -> dict[str, Any]:
    """``post_final_transcript.data.translation``: one result per target language."""
    results = []
    for target in session.targets:
        utterances = [
            t["translated_utterance"]
            for t in session.translations
            if t["target_language"] == target
        ]
        results.append(
            {
                "full_transcript": " ".join(u["text"] for u in utterances),
                "languages": [target],
                "utterances": utterances,
                "error": None,
            }
        )
    return {
        "success": session.translation_errors == 0,
        "is_empty": not session.translations,
        "exec_time": 0.1,
        "error": None,
        "results": results,
    }


async def _serve_forever(args: argparse.Namespace) -> None:
    fake = FakeGladia(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        ws_port=args.ws_port,
        script=args.script or None,
        utterance_seconds=args.utterance_seconds,
        max_sessions=args.max_sessions,
    )
    async with fake:
        print(f"Fake Gladia Live v2 on {fake.api_url} (key {fake.api_key!r})", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="HTTP API port")
    parser.add_argument("--ws-port", type=int, default=0, help="WebSocket port (0: any)")
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--utterance-seconds", type=float, default=1.0)
    parser.add_argument("--max-sessions", type=int, default=None)
    parser.add_argument("--script", action="append", help="a sentence (repeatable)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(parser.parse_args()))


if __name__ == "__main__":
    main()
