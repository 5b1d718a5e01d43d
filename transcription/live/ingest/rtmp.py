"""RTMP ingest for one transcription run: LiveKit egress pushes, ffmpeg decodes to PCM16 16 kHz.

::

    publisher --RTMP--> gate on <bind host>:<run port>   (checks app + stream key, one publisher)
                          |  its media messages as FLV, over ffmpeg's stdin
                          v
                        ffmpeg -f flv -i pipe:0 -> s16le 16 kHz mono
                          |  stdout
                          v
                        chunks() -> the run's pipeline

The run's secret is checked by the gate (:mod:`transcription.live.ingest.gate`) on a port of the
run's own (:class:`PortPool`), open only while the run lives and serving one publisher at a
time. Connections that have not passed the gate are held within caps, per address and in total,
and under short timeouts (``hello_timeout`` for C0+C1, ``handshake_timeout`` to ``publish``);
at a cap a newcomer is never refused, a waiting connection is dropped instead
(:mod:`transcription.live.ingest.admission`), so silent sockets cannot lock the egress out.
ffmpeg has no socket at all: it reads FLV from a pipe only this process holds
(:mod:`transcription.live.ingest.relay`), so no audio reaches a run except through the gate. The
secret never appears on ffmpeg's command line (visible to every local user in ``ps``).

When ffmpeg exits (its publisher left, or it died) it is started again, at once after a session
and with a growing backoff after quick failures, while the egress retries its connection. A run
with no publisher for ``accept_timeout`` seconds at first, or ``reconnect_timeout`` seconds after
one left, gives up: :meth:`RtmpIngest.chunks` raises :class:`NoPublisher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator
from typing import Self

from transcription.live.ingest.admission import Admission, Pending
from transcription.live.ingest.ffmpeg import (
    BYTES_PER_SECOND,
    STOP_GRACE,
    decoder_command,
    end_process,
    ffmpeg_path,
)
from transcription.live.ingest.gate import Progress, Publish, RtmpRefused, accept_publish
from transcription.live.ingest.ports import PortPool
from transcription.live.ingest.relay import relay_media

logger = logging.getLogger(__name__)

MAX_PENDING = 64
"""Connections waiting to pass the gate at once; beyond, the least advanced is dropped."""
MAX_PENDING_PER_ADDRESS = 16
"""The same, per source address."""
_BACKLOG = 64
_DECODER_TIMEOUT = 5.0
_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 2.0
_HEALTHY_RUN = 5.0


class IngestStatus(enum.StrEnum):
    NEW = "new"
    WAITING = "waiting"
    """Listening; no publisher yet, or the last one left and the egress may come back."""
    STREAMING = "streaming"
    NO_PUBLISHER = "no_publisher"
    STOPPED = "stopped"


class NoPublisher(Exception):
    """Nobody published to the run's URL within the deadline."""


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()


class RtmpIngest:
    """One run's RTMP listener and decoder, used from one event loop.

    ``await start()``; give the egress ``url(public_host)``; consume ``chunks()`` (PCM16LE
    16 kHz mono, ``chunk_bytes`` each, across publisher reconnections); ``await stop()``
    (idempotent, also ends ``chunks()``). Also an async context manager.
    """

    def __init__(
        self,
        *,
        stream_key: str,
        ports: PortPool,
        ffmpeg: str = "auto",
        app: str = "live",
        accept_timeout: float = 30.0,
        reconnect_timeout: float = 35.0,
        hello_timeout: float = 2.0,
        handshake_timeout: float = 5.0,
        idle_timeout: float = 10.0,
        chunk_bytes: int = 640,
        max_buffered_seconds: float = 30.0,
        preferred_port: int | None = None,
    ) -> None:
        if not stream_key or chunk_bytes <= 0 or chunk_bytes % 2:
            raise ValueError("a stream key and an even chunk size are required")
        self._key = stream_key
        self.ports = ports
        self.app = app
        self.ffmpeg = ffmpeg_path(ffmpeg)
        self.accept_timeout = accept_timeout
        self.reconnect_timeout = reconnect_timeout
        self.hello_timeout = hello_timeout
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.chunk_bytes = chunk_bytes
        self.preferred_port = preferred_port
        self.status = IngestStatus.NEW
        self.port: int | None = None
        self.restarts = 0
        """ffmpeg starts after the first one."""
        self.refused = 0
        """Connections turned away: wrong app or key, not RTMP, too slow, dropped to make room
        for a newer one, or while a publisher streams."""
        self.publishers = 0
        """Publishers let through (a reconnecting egress counts again)."""
        self.pids: list[int] = []
        """Every ffmpeg process started, for supervision and tests."""
        self.publisher_at: float | None = None
        """``time.monotonic()`` when the latest publisher passed the gate."""
        self.first_audio_at: float | None = None
        self.last_error = ""
        """The tail of the last ffmpeg's stderr."""
        self._bytes = 0
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(
            maxsize=max(1, int(max_buffered_seconds * BYTES_PER_SECOND / chunk_bytes))
        )
        self._server: asyncio.Server | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._decoder: asyncio.StreamWriter | None = None
        """The stdin of an ffmpeg no publisher has used yet."""
        self._decoder_ready = asyncio.Event()
        self._streaming = False
        self._admission = Admission(total=MAX_PENDING, per_address=MAX_PENDING_PER_ADDRESS)
        self._clients: set[asyncio.StreamWriter] = set()
        self._sessions: set[asyncio.Task[None]] = set()
        self._waiting_since = 0.0
        self._wake = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._closed = asyncio.Event()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None

    # --- public API ---------------------------------------------------------------------------

    @property
    def audio_seconds(self) -> float:
        """Seconds of PCM decoded so far (handed to :meth:`chunks`, read or not)."""
        return self._bytes / BYTES_PER_SECOND

    @property
    def pending(self) -> int:
        """Connections accepted that have not yet passed the gate nor been refused."""
        return len(self._admission)

    @property
    def ffmpeg_pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def url(self, host: str | None = None) -> str:
        """The URL to give the egress; ``host`` is the public name of the bind host."""
        if self.port is None:
            raise RuntimeError("start() the ingest first")
        return f"rtmp://{host or self.ports.host}:{self.port}/{self.app}/{self._key}"

    async def start(self) -> None:
        """Take a port, listen on it, start ffmpeg; returns once ffmpeg is ready for a publisher.

        Raises ``PortsExhausted`` when the pool has no free port.
        """
        if self.status is not IngestStatus.NEW:
            raise RuntimeError("an ingest starts once")
        for attempt in range(3):
            port = self.ports.acquire(self.preferred_port if attempt == 0 else None)
            try:
                self._server = await asyncio.start_server(
                    self._on_client, self.ports.host, port, backlog=_BACKLOG
                )
            except OSError:
                self.ports.release(port)  # lost a race with another process; try the next
                continue
            self.port = port
            break
        else:
            raise OSError("could not bind a port of the pool")
        self.status = IngestStatus.WAITING
        self._waiting_since = time.monotonic()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        with contextlib.suppress(TimeoutError):  # if ffmpeg is slow, the egress retries anyway
            await asyncio.wait_for(self._decoder_ready.wait(), _DECODER_TIMEOUT)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The decoded audio, ``chunk_bytes`` at a time, across publisher reconnections.

        Ends after :meth:`stop`; raises :class:`NoPublisher` when the run gave up waiting.
        One consumer only.
        """
        while True:
            chunk = await self._queue.get()
            if chunk is None:
                self._queue.put_nowait(None)  # a later call ends too
                if self.status is IngestStatus.NO_PUBLISHER:
                    raise NoPublisher(f"no publisher on port {self.port}")
                return
            yield chunk

    async def stop(self) -> None:
        """Stop listening, end ffmpeg (terminate, then kill after a grace), release the port."""
        await self._shutdown(IngestStatus.STOPPED)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- the gate -----------------------------------------------------------------------------

    def _refuse(self, writer: asyncio.StreamWriter, why: str) -> None:
        self.refused += 1
        logger.info("RTMP ingest on port %s refused a connection: %s", self.port, why)
        _abort(writer)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing or self._streaming:
            self._refuse(writer, "a publisher is streaming" if self._streaming else "closing")
            return
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
            task.add_done_callback(self._sessions.discard)
        peer = writer.get_extra_info("peername")
        pending, dropped = self._admission.admit(str(peer[0]) if peer else "", writer)
        if dropped is not None:
            _abort(dropped.writer)  # its own session sees its connection end and counts it
        self._clients.add(writer)
        try:
            publish = await self._authenticate(reader, writer, pending)
            if publish is None:
                return
            if self._closing or self._streaming:
                self._refuse(writer, "another publisher is streaming")
                return
            await self._stream(publish, writer)
        finally:
            self._clients.discard(writer)
            _abort(writer)

    async def _authenticate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pending: Pending
    ) -> Publish | None:
        """The gate for one connection: its :class:`Publish`, or ``None`` once refused."""
        try:
            async with asyncio.timeout(self.handshake_timeout):
                return await accept_publish(
                    reader,
                    writer,
                    app=self.app,
                    stream_key=self._key,
                    hello_timeout=self.hello_timeout,
                    on_progress=pending.advance,
                )
        except (RtmpRefused, TimeoutError, asyncio.IncompleteReadError, OSError) as exc:
            if pending.dropped:
                why = "dropped to make room for a newer connection"
            elif isinstance(exc, TimeoutError) and pending.progress is Progress.ACCEPTED:
                why = f"no RTMP handshake within {self.hello_timeout:g} s"
            elif isinstance(exc, TimeoutError):
                why = f"no publish within {self.handshake_timeout:g} s"
            else:
                why = str(exc) or type(exc).__name__
            self._refuse(writer, why)
            return None
        finally:
            self._admission.release(pending)

    async def _stream(self, publish: Publish, writer: asyncio.StreamWriter) -> None:
        """Relay an authenticated publisher to a fresh ffmpeg until it leaves or fails."""
        self._streaming = True
        self.publishers += 1
        self.publisher_at = time.monotonic()
        self.status = IngestStatus.STREAMING
        self._wake.set()
        decoder: asyncio.StreamWriter | None = None
        try:
            decoder = await self._take_decoder()
            if decoder is None:
                logger.warning("RTMP ingest on port %s: ffmpeg not ready", self.port)
                return
            writer.write(publish.start_reply())
            await relay_media(publish, writer, decoder, idle_timeout=self.idle_timeout)
        except TimeoutError:
            logger.warning("RTMP ingest on port %s: publisher silent, dropped", self.port)
        except (RtmpRefused, OSError) as exc:
            logger.warning("RTMP ingest on port %s: publisher dropped: %s", self.port, exc)
        finally:
            if decoder is not None:
                decoder.close()  # ffmpeg decodes what it still holds, then exits 0
            self._streaming = False
            self._waiting_since = time.monotonic()
            if not self._closing:
                self.status = IngestStatus.WAITING
            self._wake.set()

    async def _take_decoder(self) -> asyncio.StreamWriter | None:
        try:
            await asyncio.wait_for(self._decoder_ready.wait(), _DECODER_TIMEOUT)
        except TimeoutError:
            return None
        decoder, self._decoder = self._decoder, None
        self._decoder_ready.clear()
        return decoder

    # --- ffmpeg -------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while not self._closing:
            started = time.monotonic()
            publishers = self.publishers
            gave_up = await self._run_ffmpeg()
            if gave_up:
                await self._shutdown(IngestStatus.NO_PUBLISHER)
                return
            if self._closing:
                return
            self.restarts += 1
            healthy = self.publishers > publishers or time.monotonic() - started > _HEALTHY_RUN
            failures = 0 if healthy else failures + 1
            if failures:
                delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (failures - 1))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_requested.wait(), delay)

    def _deadline_remaining(self) -> float | None:
        if self._streaming:
            return None
        limit = self.reconnect_timeout if self.publishers else self.accept_timeout
        return self._waiting_since + limit - time.monotonic()

    async def _run_ffmpeg(self) -> bool:
        """Run one ffmpeg until it exits; true when the run gave up waiting for a publisher."""
        proc = await asyncio.create_subprocess_exec(
            *decoder_command(self.ffmpeg),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._proc = proc
        self.pids.append(proc.pid)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self._decoder = proc.stdin
        self._decoder_ready.set()
        helpers = [
            asyncio.ensure_future(self._read_pcm(proc.stdout)),
            asyncio.ensure_future(self._read_stderr(proc.stderr)),
        ]
        exited = asyncio.ensure_future(proc.wait())
        gave_up = False
        try:
            while not exited.done():
                remaining = self._deadline_remaining()
                if self._closing or (remaining is not None and remaining <= 0):
                    gave_up = not self._closing
                    await end_process(proc)
                    break
                self._wake.clear()
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait(
                    {exited, woken}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                woken.cancel()
            await asyncio.gather(*helpers)
            if proc.returncode and not self._closing and not gave_up:
                # 0 is a publisher that left: the gate closed ffmpeg's input.
                logger.warning(
                    "ffmpeg on RTMP port %s exited %s: %s",
                    self.port,
                    proc.returncode,
                    self.last_error,
                )
        finally:
            for task in (*helpers, exited):
                task.cancel()
            await asyncio.gather(*helpers, exited, return_exceptions=True)
            if self._decoder is proc.stdin:  # never used: it dies with this ffmpeg
                self._decoder = None
                self._decoder_ready.clear()
                proc.stdin.close()
        return gave_up

    async def _read_pcm(self, stdout: asyncio.StreamReader) -> None:
        size = self.chunk_bytes
        buffer = bytearray()
        while data := await stdout.read(65536):
            if self.first_audio_at is None:
                self.first_audio_at = time.monotonic()
            buffer += data
            whole = len(buffer) - len(buffer) % size
            for offset in range(0, whole, size):
                await self._emit(bytes(buffer[offset : offset + size]))
            del buffer[:whole]
        tail = len(buffer) - len(buffer) % 2
        if tail:
            await self._emit(bytes(buffer[:tail]))

    async def _emit(self, chunk: bytes) -> None:
        if self._closing and self._queue.full():
            return  # stopping and nobody reads: do not hold ffmpeg's exit up
        await self._queue.put(chunk)
        self._bytes += len(chunk)

    async def _read_stderr(self, stderr: asyncio.StreamReader) -> None:
        tail = b""
        while data := await stderr.read(4096):
            tail = (tail + data)[-2000:]
        self.last_error = tail.decode(errors="replace").strip()

    # --- shutdown -----------------------------------------------------------------------------

    async def _shutdown(self, status: IngestStatus) -> None:
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self.status = status
        self._stop_requested.set()
        self._wake.set()
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients):
            _abort(writer)
        sessions = self._sessions - {asyncio.current_task()}
        if sessions:
            await asyncio.wait(sessions, timeout=STOP_GRACE)
        if self._proc is not None:
            await end_process(self._proc)
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not asyncio.current_task():
            try:
                await asyncio.wait_for(asyncio.shield(supervisor), STOP_GRACE + 1)
            except TimeoutError:
                supervisor.cancel()
                await asyncio.gather(supervisor, return_exceptions=True)
            if self._proc is not None:  # started while we were stopping it
                await end_process(self._proc)
        if self.port is not None:
            self.ports.release(self.port)
        while True:
            try:
                self._queue.put_nowait(None)
                break
            except asyncio.QueueFull:
                self._queue.get_nowait()  # nobody reads any more: drop the oldest
        self._closed.set()
