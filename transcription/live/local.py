"""Messages to runs: directly to a run of this loop, batched through the layer to any other.

A run listens on its channel-layer channel (``RunPipeline.channel``) for audio frames, speaker
reports and control messages, wherever they come from. When the socket that sends them is served
by the same event loop as the run (embedded mode, the default of ``make run``), going through
the channel layer only costs: a queue put, a task wake-up and the layer's receive per frame,
about 12 % of the loop at 50 browser-mode runs (docs/benchmarks.md). Here the run registers a
handler for its channel, and a sender on the same loop calls it directly; anything else (another
process, another loop, a thread) still goes through the layer, and the run handles both the same
way.

The registry is the channel layers' (``rooms.layers``): in an ingest worker the pub/sub
layer hands a run its messages the same way, straight from the batch it read.

To a run elsewhere (a Celery ingest worker), ``forward`` queues the message and one task per
loop sends what has queued in one write (``queue_many`` of ``rooms.layers``), in order, at
most once every ``send_every_seconds()``. The pub/sub layer otherwise sends one message per round
trip per process, which capped a Daphne at a few thousand frames a second; and sending as soon
as anything was queued still cost a pipeline through redis-py for every frame or two, since
frames arrive one socket at a time (docs/benchmarks.md, issue 20). The task does not wait for
Redis' reply before the next batch: while it did, a slow round trip held every socket's audio
(up to 90 ms at 100 two-speaker sessions), and the runs lost audio to their trims.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import weakref
from typing import Any

from channels.exceptions import ChannelFull
from django.conf import settings

from rooms import metrics
from rooms.layers import deliver, register, unregister

__all__ = ["deliver", "forward", "register", "unregister"]

logger = logging.getLogger(__name__)


MAX_QUEUED = 10_000
"""Messages queued for runs elsewhere (all sockets of a loop) before new ones are dropped: a
layer that is away must not grow the process without bound (audio is live: late is lost). As
many may be sent and not yet acknowledged by Redis; beyond that the outbox sends no more."""


WAIT_SHARE_OF_JITTER = 0.1
"""How long the first message queued waits for others to go with it, as a share of the mixer's
jitter allowance (``TRANSCRIPTION_JITTER_SECONDS``): 10 ms at the default 100 ms, none at 0.
Waiting adds up to that much to a frame's arrival, which the run's jitter buffer must absorb;
in exchange a Daphne sends at most one batch per interval to runs elsewhere, whatever the
number of sockets. At 50 two-speaker sessions and 40 ms of jitter allowance (so 4 ms here),
the server's processes used 1.15-1.30 cores while speaking instead of 1.44-1.66
(docs/benchmarks.md, issue 20). Control messages (a speaker leaving, speaker reports) are rare
and wait the same."""


def send_every_seconds() -> float:
    return settings.TRANSCRIPTION_JITTER_SECONDS * WAIT_SHARE_OF_JITTER


class _Outbox:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.queued: list[tuple[str, dict[str, Any]]] = []
        self.sender: asyncio.Task[None] | None = None
        # Batches sent that Redis has not acknowledged yet (size, future), oldest first.
        self.unacknowledged: collections.deque[tuple[int, asyncio.Future[None]]] = (
            collections.deque()
        )

    def put(self, channel: str, message: dict[str, Any]) -> None:
        if len(self.queued) >= MAX_QUEUED:
            metrics.error("run_channel_full")
            return
        self.queued.append((channel, message))
        if self.sender is None or self.sender.done():
            self.sender = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        queue_many = getattr(self.layer, "queue_many", None)
        while self.queued:
            wait = send_every_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            if queue_many is not None:
                await self._within_bound()
            batch, self.queued = self.queued, []
            try:
                if queue_many is not None:
                    # Not awaited: the next batch leaves at its time, however long Redis'
                    # reply to this one takes (a round trip on a busy box took 20-90 ms).
                    sent = queue_many(batch)
                    sent.add_done_callback(functools.partial(_unsent, len(batch)))
                    self.unacknowledged.append((len(batch), sent))
                else:
                    for channel, message in batch:
                        await self._send_one(channel, message)
            except Exception as exc:
                _warn_unsent(len(batch), exc)

    async def _within_bound(self) -> None:
        """Wait while ``MAX_QUEUED`` messages or more are sent and not acknowledged: a Redis
        that stopped reading must not grow the process without bound either (meanwhile new
        frames queue here, up to ``MAX_QUEUED``, and then are dropped)."""
        pending = self.unacknowledged
        while pending and pending[0][1].done():
            pending.popleft()
        while sum(count for count, _ in pending) >= MAX_QUEUED:
            await asyncio.wait([pending.popleft()[1]])
            while pending and pending[0][1].done():
                pending.popleft()

    async def _send_one(self, channel: str, message: dict[str, Any]) -> None:
        try:
            await self.layer.send(channel, message)
        except ChannelFull:
            # The runner is behind: drop this message rather than queue latency.
            metrics.error("run_channel_full")
            logger.warning("run channel full; dropped a %s message", message.get("type"))


def _unsent(count: int, sent: asyncio.Future[None]) -> None:
    """Done callback of a batch queued for runs elsewhere: say so when it failed."""
    if not sent.cancelled() and (error := sent.exception()) is not None:
        _warn_unsent(count, error)


def _warn_unsent(count: int, error: BaseException) -> None:
    # Redis is away (restarting): these messages are lost, the runs go on, and a stop still
    # comes by heartbeat.
    logger.warning("%d messages to runs not sent (channel layer): %r", count, error)


_outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outbox] = (
    weakref.WeakKeyDictionary()
)


def forward(layer: Any, channel: str, message: dict[str, Any]) -> None:
    """Send ``message`` to the run on ``channel`` through ``layer``: queued, and sent with what
    else this loop queues in the next ``send_every_seconds()``, in order, in one round trip.
    Returns at once."""
    loop = asyncio.get_running_loop()
    outbox = _outboxes.get(loop)
    if outbox is None or outbox.layer is not layer:
        outbox = _outboxes[loop] = _Outbox(layer)
    outbox.put(channel, message)
