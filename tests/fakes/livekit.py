"""A protocol-faithful fake of LiveKit's egress API and webhooks, for tests and local demos.

    async with FakeLiveKit(api_key="k", api_secret="s") as fake:     # in-process
        async with api.LiveKitAPI(fake.url, "k", "s") as lk: ...
    python -m tests.fakes.livekit --port 7880 --key devkey --secret secret \\
        [--webhook-url http://127.0.0.1:8000/api/livekit/webhook] [--egress-delay 3]

Twirp with protobuf bodies as ``livekit-api`` speaks it (``Authorization: Bearer <jwt>`` with a
``room_record`` grant; errors as JSON ``{"code", "msg"}`` with Twirp's HTTP status):
``StartRoomCompositeEgress``, ``StopEgress``, ``ListEgress``. Like the real egress, a started
egress pushes real audio (the speech fixture as AAC in FLV, encoded once, looped, ``-re -c copy``)
to each RTMP URL after ``egress_delay`` seconds, retries a dropped connection for
``retry_window`` seconds and then fails, and redacts stream keys in the ``EgressInfo`` it returns.
With ``webhook_url`` it sends ``egress_started``/``egress_updated``/``egress_ended`` as LiveKit
does; :meth:`FakeLiveKit.send_webhook` sends any event, signed like LiveKit's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from livekit import api

from transcription.live.ingest import ffmpeg_path
from transcription.live.ingest.ffmpeg import end_process

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "speech" / "two_cities_opening.flac"

_TWIRP_CODES = {
    400: "invalid_argument malformed out_of_range",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found bad_route",
    408: "canceled deadline_exceeded",
    409: "already_exists aborted",
    412: "failed_precondition",
    429: "resource_exhausted",
    500: "unknown internal dataloss",
    501: "unimplemented",
    503: "unavailable",
}
TWIRP_STATUS = {code: status for status, codes in _TWIRP_CODES.items() for code in codes.split()}
"""Twirp error code -> HTTP status, from the Twirp specification."""
_REQUESTS: dict[str, type[Message]] = {
    "StartRoomCompositeEgress": api.RoomCompositeEgressRequest,
    "StopEgress": api.StopEgressRequest,
    "ListEgress": api.ListEgressRequest,
}
# The real egress's rule: rtmp(s)://{host}(/{path})/{app}/{stream_key}
_RTMP_URL = re.compile(r"^(rtmps?://)(.*/)(.*/)(\S*)( live=1)?$")
_ENDED = {
    api.EgressStatus.EGRESS_COMPLETE,
    api.EgressStatus.EGRESS_FAILED,
    api.EgressStatus.EGRESS_ABORTED,
    api.EgressStatus.EGRESS_LIMIT_REACHED,
}
_HEALTHY_PUSH = 2.0
"""A pusher that ran this long was connected: a later drop starts a new retry window."""


def encode_flv(
    source: Path, dest: Path, *, seconds: float | None = None, ffmpeg: str = "auto"
) -> Path:
    """Encode ``source`` as egress sends audio: AAC, 48 kHz stereo, 128 kb/s, in FLV."""
    limit = ["-t", str(seconds)] if seconds is not None else []
    command = [ffmpeg_path(ffmpeg), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    command += ["-i", str(source), *limit, "-vn", "-c:a", "aac", "-b:a", "128k", "-ar", "48000"]
    command += ["-ac", "2", "-f", "flv", str(dest)]
    subprocess.run(command, check=True)
    return dest


def redact_stream_key(url: str) -> str:
    """What the real egress shows of an RTMP URL: ``rtmp://host/live/{abc...xyz}``."""
    match = _RTMP_URL.match(url)
    if not match:
        return url
    key = match.group(4)
    keep = next((n for n in (3, 2, 1) if len(key) >= 3 * n), 0)
    redacted = f"{{{key[:keep]}...{key[len(key) - keep :] if keep else ''}}}"
    return "".join(part or "" for part in (*match.groups()[:3], redacted, match.group(5)))


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")


class TwirpError(Exception):
    """``TwirpError(code, msg)``: answered as Twirp's JSON error with the code's status."""


@dataclass
class RecordedRequest:
    method: str
    """The Twirp method, e.g. ``StartRoomCompositeEgress``."""
    headers: dict[str, str]
    request: Message | None
    status: int


@dataclass
class FakeEgress:
    """What the fake knows about one egress; ``info`` is what the API returns."""

    info: api.EgressInfo
    urls: list[str]
    """The RTMP URLs as requested (``info`` shows them redacted, like the real egress)."""
    pushes: int = 0
    """Pusher processes started, over all URLs (a reconnect counts again)."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    procs: set[asyncio.subprocess.Process] = field(default_factory=set)

    @property
    def active(self) -> bool:
        return self.info.status not in _ENDED


@dataclass(kw_only=True)
class FakeLiveKit:
    """The fake server; see the module docstring. Settings may change while it runs."""

    api_key: str
    api_secret: str
    host: str = "127.0.0.1"
    port: int = 0
    audio: Path = FIXTURE
    """What the egress pushes: any audio file, or an FLV to push as it is."""
    egress_delay: float = 0.0
    retry_window: float = 30.0
    webhook_url: str | None = None
    ffmpeg: str = "auto"
    requests: list[RecordedRequest] = field(default_factory=list, init=False)
    egresses: dict[str, FakeEgress] = field(default_factory=dict, init=False)
    webhooks: list[tuple[str, api.WebhookEvent, int]] = field(default_factory=list, init=False)
    """Every webhook sent: URL, event, HTTP status (0 when it could not be delivered)."""

    def __post_init__(self) -> None:
        self.ffmpeg = ffmpeg_path(self.ffmpeg)
        self._faults: list[tuple[str, str, str]] = []
        self._server: asyncio.Server | None = None
        self._tmp: Path | None = None
        self._flv = self.audio
        self._http: httpx.AsyncClient | None = None
        self._outbox: asyncio.Queue[tuple[str, api.WebhookEvent]] = asyncio.Queue()
        self._background: set[asyncio.Task[None]] = set()

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self.audio.suffix != ".flv":
            self._tmp = Path(tempfile.mkdtemp(prefix="fake-livekit-"))
            self._flv = await asyncio.to_thread(
                encode_flv, self.audio, self._tmp / "egress.flv", ffmpeg=self.ffmpeg
            )
        self._http = httpx.AsyncClient(timeout=10.0)
        self._spawn(self._deliver())
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for egress in self.egresses.values():
            await self._halt(egress)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._http is not None:
            await self._http.aclose()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- test controls ----------------------------------------------------------------------

    def fail_next(
        self, method: str = "StartRoomCompositeEgress", *, code: str = "unavailable", msg: str = ""
    ) -> None:
        """Make the next call of ``method`` fail with Twirp error ``code``."""
        if code not in TWIRP_STATUS:
            raise ValueError(f"not a Twirp error code: {code}")
        self._faults.append((method, code, msg or f"fake {code}"))

    def egress_for_room(self, room_name: str) -> FakeEgress:
        """The latest egress of ``room_name``."""
        return [e for e in self.egresses.values() if e.info.room_name == room_name][-1]

    async def end_egress(
        self,
        egress_id: str,
        *,
        status: api.EgressStatus = api.EgressStatus.EGRESS_FAILED,
        error: str = "",
    ) -> api.EgressInfo:
        """End an egress the way LiveKit may on its own (failure, abort, limit reached)."""
        egress = self.egresses[egress_id]
        await self._halt(egress)
        await self._finish(egress, status, error)
        return egress.info

    # --- webhooks ---------------------------------------------------------------------------

    def sign(self, body: str) -> str:
        """The ``Authorization`` header LiveKit sends with ``body`` (no "Bearer")."""
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        return api.AccessToken(self.api_key, self.api_secret).with_sha256(digest).to_jwt()

    def event(
        self,
        name: str,
        *,
        room_name: str = "",
        identity: str = "",
        participant_name: str = "",
        egress: api.EgressInfo | None = None,
    ) -> api.WebhookEvent:
        """A webhook event as LiveKit builds it, e.g. ``participant_joined``, ``room_finished``."""
        now = time.time()
        return api.WebhookEvent(
            event=name,
            id=_new_id("EV_"),
            created_at=int(now),
            room=api.Room(sid=_sid("RM_", room_name), name=room_name) if room_name else None,
            participant=api.ParticipantInfo(
                sid=_sid("PA_", identity),
                identity=identity,
                name=participant_name or identity,
                state=api.ParticipantInfo.State.ACTIVE,
                joined_at=int(now),
                joined_at_ms=int(now * 1000),
            )
            if identity
            else None,
            egress_info=egress,
        )

    async def send_webhook(self, url: str, event: api.WebhookEvent) -> int:
        """POST ``event`` to ``url`` signed like LiveKit; returns the HTTP status."""
        assert self._http is not None, "start() the fake first"
        body = MessageToJson(event, indent=None)
        try:
            response = await self._http.post(
                url,
                content=body.encode(),
                headers={
                    "Authorization": self.sign(body),
                    "Content-Type": "application/webhook+json",
                },
            )
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        self.webhooks.append((url, event, status))
        return status

    async def webhooks_delivered(self) -> None:
        """Wait until every webhook the fake sent on its own has been delivered (or failed)."""
        await self._outbox.join()

    def _spawn(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _deliver(self) -> None:
        """Send queued webhooks in order, off the request path, as LiveKit does."""
        while True:
            url, event = await self._outbox.get()
            try:
                await self.send_webhook(url, event)
            finally:
                self._outbox.task_done()

    def _notify(self, egress: FakeEgress) -> None:
        if self.webhook_url is None:
            return
        status = egress.info.status
        name = "egress_ended" if status in _ENDED else "egress_updated"
        if status == api.EgressStatus.EGRESS_STARTING:
            name = "egress_started"
        info = api.EgressInfo()
        info.CopyFrom(egress.info)
        self._outbox.put_nowait((self.webhook_url, self.event(name, egress=info)))

    # --- HTTP / Twirp -----------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # HTTP/1.1 keep-alive: aiohttp reuses connections
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, content_type, payload = await self._route(method, path, headers, body)
                reply = f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                reply += f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n\r\n"
                writer.write(reply.encode() + payload)
                await writer.drain()
        except (ValueError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _route(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        twirp_method = path.removeprefix("/twirp/livekit.Egress/")
        request: Message | None = None
        try:
            if method != "POST" or twirp_method not in _REQUESTS:
                raise TwirpError("bad_route", f"no handler for {method} {path}")
            if headers.get("content-type", "").split(";")[0] != "application/protobuf":
                raise TwirpError("bad_route", "this fake speaks protobuf only")
            self._authorize(headers.get("authorization", ""))
            try:
                request = _REQUESTS[twirp_method].FromString(body)
            except Exception as exc:
                raise TwirpError("malformed", f"bad protobuf: {exc}") from exc
            for fault in self._faults:
                if fault[0] == twirp_method:
                    self._faults.remove(fault)
                    raise TwirpError(fault[1], fault[2])
            response = await self._call(twirp_method, request)
        except TwirpError as exc:
            code, msg = exc.args
            status = TWIRP_STATUS[code]
            self.requests.append(RecordedRequest(twirp_method, headers, request, status))
            return status, "application/json", json.dumps({"code": code, "msg": msg}).encode()
        self.requests.append(RecordedRequest(twirp_method, headers, request, 200))
        return 200, "application/protobuf", response.SerializeToString()

    def _authorize(self, header: str) -> None:
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token:
            raise TwirpError("unauthenticated", "authorization header missing or not Bearer")
        try:
            claims = api.TokenVerifier(self.api_key, self.api_secret).verify(token)
        except Exception as exc:
            raise TwirpError("unauthenticated", f"invalid token: {exc}") from exc
        if not claims.video or not claims.video.room_record:
            raise TwirpError("permission_denied", "the token has no room_record grant")

    async def _call(self, method: str, request: Message) -> Message:
        if isinstance(request, api.RoomCompositeEgressRequest):
            return await self._start(request)
        if isinstance(request, api.StopEgressRequest):
            return await self._stop(request)
        assert isinstance(request, api.ListEgressRequest)
        items = [
            e.info
            for e in self.egresses.values()
            if (not request.room_name or e.info.room_name == request.room_name)
            and (not request.egress_id or e.info.egress_id == request.egress_id)
            and (not request.active or e.active)
        ]
        return api.ListEgressResponse(items=items)

    # --- egress -----------------------------------------------------------------------------

    async def _start(self, request: api.RoomCompositeEgressRequest) -> api.EgressInfo:
        if not request.room_name:
            raise TwirpError("invalid_argument", "room name is required")
        urls = [url for output in request.stream_outputs for url in output.urls]
        if request.HasField("stream"):
            urls += list(request.stream.urls)
        if not urls:
            raise TwirpError("invalid_argument", "this fake supports stream outputs only")
        for url in urls:
            if not _RTMP_URL.match(url):
                raise TwirpError("invalid_argument", f"invalid rtmp url {url}")
        shown = api.RoomCompositeEgressRequest()
        shown.CopyFrom(request)
        for output in shown.stream_outputs:
            output.urls[:] = [redact_stream_key(url) for url in output.urls]
        info = api.EgressInfo(
            egress_id=_new_id("EG_"),
            room_id=_sid("RM_", request.room_name),
            room_name=request.room_name,
            status=api.EgressStatus.EGRESS_STARTING,
            updated_at=time.time_ns(),
            room_composite=shown,
            stream_results=[api.StreamInfo(url=redact_stream_key(url)) for url in urls],
        )
        egress = FakeEgress(info=info, urls=urls)
        self.egresses[info.egress_id] = egress
        loop = asyncio.get_running_loop()
        egress.tasks = [loop.create_task(self._push(egress, i)) for i in range(len(urls))]
        self._notify(egress)
        return info

    async def _stop(self, request: api.StopEgressRequest) -> api.EgressInfo:
        egress = self.egresses.get(request.egress_id)
        if egress is None:
            raise TwirpError("not_found", "egress does not exist")
        if not egress.active or egress.info.status == api.EgressStatus.EGRESS_ENDING:
            name = api.EgressStatus.Name(egress.info.status)
            raise TwirpError("failed_precondition", f"egress with status {name} cannot be stopped")
        egress.info.status = api.EgressStatus.EGRESS_ENDING
        egress.info.updated_at = time.time_ns()
        reply = api.EgressInfo()
        reply.CopyFrom(egress.info)
        self._spawn(self._complete(egress))
        return reply

    async def _complete(self, egress: FakeEgress) -> None:
        await self._halt(egress)
        await self._finish(egress, api.EgressStatus.EGRESS_COMPLETE, "")

    async def _finish(self, egress: FakeEgress, status: api.EgressStatus, error: str) -> None:
        if egress.info.status in _ENDED:
            return
        now = time.time_ns()
        egress.info.status = status
        egress.info.error = error
        egress.info.ended_at = egress.info.updated_at = now
        done = status == api.EgressStatus.EGRESS_COMPLETE
        for result in egress.info.stream_results:
            if result.status == api.StreamInfo.Status.ACTIVE:
                result.status = api.StreamInfo.FINISHED if done else api.StreamInfo.FAILED
                result.ended_at = now
                result.duration = now - result.started_at if result.started_at else 0
        self._notify(egress)

    async def _halt(self, egress: FakeEgress) -> None:
        """Stop pushing: cancel the push loops and end their ffmpeg processes."""
        tasks = [task for task in egress.tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for proc in list(egress.procs):
            await end_process(proc)
        egress.procs.clear()

    async def _push(self, egress: FakeEgress, index: int) -> None:
        """Push the audio to one URL like egress: retry a drop for ``retry_window`` seconds."""
        await asyncio.sleep(self.egress_delay)
        result = egress.info.stream_results[index]
        result.started_at = time.time_ns()
        if egress.info.status == api.EgressStatus.EGRESS_STARTING:
            egress.info.status = api.EgressStatus.EGRESS_ACTIVE
            egress.info.started_at = egress.info.updated_at = result.started_at
            self._notify(egress)
        dropped_at: float | None = None
        backoff = 0.2
        while True:
            began = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                self.ffmpeg,
                *("-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1"),
                *("-i", str(self._flv), "-c", "copy", "-f", "flv", egress.urls[index]),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            egress.pushes += 1
            egress.procs.add(proc)
            try:
                await proc.wait()
            finally:
                await end_process(proc)
                egress.procs.discard(proc)
            now = time.monotonic()
            if now - began >= _HEALTHY_PUSH or dropped_at is None:
                dropped_at, backoff = now, 0.2
            if now - dropped_at > self.retry_window:
                result.status, result.error = api.StreamInfo.FAILED, "rtmp connection failed"
                result.ended_at = time.time_ns()
                if all(r.status == api.StreamInfo.FAILED for r in egress.info.stream_results):
                    await self._finish(egress, api.EgressStatus.EGRESS_FAILED, "outputs failed")
                return
            result.retries += 1
            result.last_retry_at = time.time_ns()
            await asyncio.sleep(backoff)
            backoff = min(2.0, backoff * 2)


def _sid(prefix: str, name: str) -> str:
    """A stable server id for a name, as LiveKit keeps one per room and participant."""
    return prefix + hashlib.sha256(name.encode()).hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7880)
    parser.add_argument("--key", default="devkey")
    parser.add_argument("--secret", default="secret")
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--egress-delay", type=float, default=0.0)
    parser.add_argument("--audio", type=Path, default=FIXTURE)
    args = parser.parse_args()

    async def serve() -> None:
        options = ("host", "port", "egress_delay", "webhook_url", "audio")
        settings = {name: getattr(args, name) for name in options}
        async with FakeLiveKit(api_key=args.key, api_secret=args.secret, **settings) as fake:
            print(f"fake LiveKit API at {fake.url} (key {args.key})", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
