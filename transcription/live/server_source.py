"""Server (egress) mode's audio source for a run's pipeline: its own RTMP ingest, and the
LiveKit egress that pushes the room's audio to it (``RunPipeline`` mixes this in)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async
from django.conf import settings
from livekit import api as livekit_api

from transcription.live import egress, store
from transcription.live.ingest import BYTES_PER_SECOND, NoPublisher, PortPool, RtmpIngest
from transcription.live.stt import SttStream
from transcription.models import TranscriptionRun

if TYPE_CHECKING:
    from transcription.usage.metering import UsageCounters

logger = logging.getLogger(__name__)


class SourceFailure(Exception):
    """The audio source cannot go on; ``code``/``message`` end the run FAILED."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_ingest_ports: PortPool | None = None


def ingest_ports() -> PortPool:
    """This process's pool of ingest ports (``INGEST_PORT_RANGE`` on ``INGEST_BIND_HOST``)."""
    global _ingest_ports
    if _ingest_ports is None:
        start, _, end = settings.INGEST_PORT_RANGE.partition("-")
        _ingest_ports = PortPool(int(start), int(end or start), host=settings.INGEST_BIND_HOST)
    return _ingest_ports


class ServerSourceMixin:
    """The server-mode source of ``RunPipeline``; it reads and sets the pipeline's state."""

    run_id: int
    slug: str
    ingest: RtmpIngest | None
    egress_id: str
    counters: UsageCounters
    _reconnect_base: int

    def _within_budget(self, pcm: bytes) -> bytes:
        raise NotImplementedError

    async def _server_source(self, run: TranscriptionRun, stream: SttStream) -> None:
        """Server mode: our RTMP ingest, then the egress that pushes the room's audio to it.

        A restarted runner takes its old port back when it can, so the egress (which retries
        the same URL for ~30 s) reconnects by itself; otherwise it starts a new egress.
        """
        self.ingest = RtmpIngest(
            stream_key=run.ingest_key,
            ports=ingest_ports(),
            ffmpeg=settings.TRANSCRIPTION_FFMPEG,
            preferred_port=run.ingest_port,
            accept_timeout=settings.INGEST_ACCEPT_TIMEOUT_SECONDS,
            reconnect_timeout=settings.INGEST_RECONNECT_TIMEOUT_SECONDS,
        )
        await self.ingest.start()
        port = self.ingest.port
        reuse = bool(run.egress_id) and port == run.ingest_port
        await database_sync_to_async(store.run_ingest_ready)(run_id=self.run_id, port=port)
        if not reuse:
            if run.egress_id:
                await self._stop_egress(run.egress_id)
            try:
                info = await egress.egress_start(
                    room=self.slug, rtmp_url=self.ingest.url(settings.INGEST_PUBLIC_HOST)
                )
            except Exception as exc:
                raise SourceFailure("egress", egress.twirp_reason(exc)) from exc
            self.egress_id = info.egress_id
            await database_sync_to_async(store.run_egress_started)(
                run_id=self.run_id,
                egress_id=info.egress_id,
                status=livekit_api.EgressStatus.Name(info.status),
            )
        else:
            self.egress_id = run.egress_id
        logger.info("run %s: ingest on port %s, egress %s", self.run_id, port, self.egress_id)
        try:
            async for chunk in self.ingest.chunks():
                pcm = self._within_budget(chunk)
                if not pcm:
                    break
                await stream.send_audio(pcm)
                self.counters.audio_chunks += 1
                self.counters.audio_bytes += len(pcm)
                self.counters.audio_seconds = self.counters.audio_bytes / BYTES_PER_SECOND
                self.counters.reconnect_count = self._reconnect_base + stream.reconnects
        except NoPublisher as exc:
            raise SourceFailure(
                "egress", "LiveKit's audio egress never reached the ingest (no RTMP publisher)."
            ) from exc

    async def _stop_server_source(self, *, keep_egress: bool = False) -> None:
        """Stop the ingest and the egress; a hand-off keeps the egress, which retries its push
        until the next runner's ingest takes the same port back."""
        # The egress first: with the ingest gone first it would retry its push meanwhile.
        if self.egress_id and not keep_egress:
            await self._stop_egress(self.egress_id)
        if self.ingest is not None:
            await self.ingest.stop()

    async def _stop_egress(self, egress_id: str) -> None:
        try:
            await egress.egress_stop(egress_id=egress_id)
        except Exception:
            # The egress_ended webhook or LiveKit's own limits end it; never block the stop.
            logger.exception("run %s: stopping egress %s failed", self.run_id, egress_id)
