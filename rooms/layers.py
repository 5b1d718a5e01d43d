"""The channel layers: the embedded (single-process) mode's, and the distributed mode's."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from channels_redis.utils import _wrap_close

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]

_handlers: dict[str, tuple[asyncio.AbstractEventLoop, Handler]] = {}


def register(channel: str, handler: Handler) -> None:
    """Messages for ``channel`` that reach this process on the running loop go to ``handler``,
    synchronously: from a sender on the loop (:func:`deliver`), and from the pub/sub layer's
    host channel (no queue, no task wake-up per message)."""
    _handlers[channel] = (asyncio.get_running_loop(), handler)


def unregister(channel: str) -> None:
    _handlers.pop(channel, None)


def deliver(channel: str, message: dict[str, Any]) -> bool:
    """Hand ``message`` to the handler of ``channel`` when it runs on this loop; False when
    there is none here (the caller sends it through the channel layer)."""
    handler = _handler_here(channel)
    if handler is None:
        return False
    handler(message)
    return True


def _handler_here(channel: str) -> Handler | None:
    entry = _handlers.get(channel)
    if entry is None:
        return None
    try:
        return entry[1] if asyncio.get_running_loop() is entry[0] else None
    except RuntimeError:
        return None


class EmbeddedChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer, with its expiry sweep run at most once a second.

    The stock layer sweeps every channel and group on every ``receive()``: with a few hundred
    sockets and runs in one process that sweep alone took ~18 % of the process's CPU
    (docs/benchmarks.md). Expiry only has to happen eventually (messages live 60 s), so a
    sweep per second is as good and costs nothing.
    """

    sweep_interval = 1.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._last_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= self.sweep_interval:
            self._last_sweep = now
            super()._clean_expired()


_BATCH = "__batch__"
MAX_BATCH_MESSAGES = 500
"""Messages per PUBLISH to a host at most (~650 KB of audio frames): a Redis message stays far
below a subscriber's output-buffer limits (pub/sub: 8 MB sustained, 32 MB at once)."""


class PubSubChannelLayer(RedisPubSubChannelLayer):
    """Channels Redis' pub/sub layer, with one Redis channel per process for its own channels,
    and ``send_many``: several messages in one round trip.

    - **Process-local channels.** ``new_channel`` names a channel ``<host>!<id>``, where
      ``<host>`` is the Redis channel of this process's event loop (subscribed once), in the
      form Channels reserves for process-local channels. A message to any of them is PUBLISHed
      to the host, which hands it to the channel's queue. The stock layer subscribes each
      channel on its own, so an ingest worker carrying 50 runs listened on 50 Redis channels,
      and got one Redis message per audio frame.
    - **Batches.** The stock layer sends one PUBLISH at a time per process (each waits for
      Redis' reply under the shard's lock): a Daphne forwarding audio to runs in ingest workers
      was capped at one frame per round trip, and at 5,000 frames/s the frames queued for
      seconds. ``send_many`` sends a whole batch in one round trip, and everything it has for
      one host as one message: a Daphne sends one PUBLISH per ingest worker per turn of its
      loop, and the worker reads one message for all of it (docs/benchmarks.md, issue 20).
      ``group_send`` goes through the same pipelines (``_Publisher``): an ingest worker's
      runs broadcast their events together, not one round trip each.

    It uses the layer's own shards and serialisation (``channels_redis`` is pinned;
    ``tests/rooms/test_layers.py`` and the distributed tests run it against a real Redis).
    Channels named by the stock layer (no ``!``) still work, so a Daphne of this version
    reaches a run of an older worker; an older Daphne cannot reach a newer worker's runs
    (docs/deploy.md: restart the Daphnes first).
    """

    def _get_layer(self) -> _HostLoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = _HostLoopLayer(
                *self._args, **self._kwargs, channel_layer=self
            )
            _wrap_close(self, loop)
        return layer

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await self.send_many([(channel, message)])

    async def send_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """``send`` each ``(channel, message)``, in order, in one round trip per shard: one
        PUBLISH per host of process-local channels, one per message to any other channel."""
        layer = self._get_layer()
        batches: dict[str, list[list[Any]]] = {}
        publish: list[tuple[str, Any]] = []  # (Redis channel, batch list or serialised message)
        for channel, message in messages:
            data = self.serialize(message)
            host = _host_of(channel)
            if host is None:
                publish.append((channel, data))
            elif host in batches and len(batches[host]) < MAX_BATCH_MESSAGES:
                batches[host].append([channel, data])
            else:
                batches[host] = [[channel, data]]
                publish.append((host, batches[host]))
        await layer.publisher.publish(
            [
                (target, self.serialize({_BATCH: item}) if isinstance(item, list) else item)
                for target, item in publish
            ]
        )

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """The stock ``group_send`` (one PUBLISH to the group's Redis channel), through the
        loop's pipelined publisher: the group messages of every run of an ingest worker no
        longer queue one round trip each behind the shard's lock."""
        layer = self._get_layer()
        await layer.publisher.publish(
            [(layer._get_group_channel_name(group), self.serialize(message))]
        )


class _Publisher:
    """PUBLISHes of one event loop, pipelined: what is asked while a pipeline is out goes in the
    next one, in order, one round trip per shard for all of it. The stock layer holds the
    shard's lock for one PUBLISH and its reply, so a process sent at most one message per round
    trip: an ingest worker broadcasting the finals of 50 runs (250/s) fell behind for good once
    a round trip took 4 ms, and its events waited seconds (docs/benchmarks.md, issue 20). Each
    caller still waits until Redis has its message, and gets the error if it failed."""

    def __init__(self, layer: RedisPubSubLoopLayer) -> None:
        self.layer = layer
        self.queued: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self.sender: asyncio.Task[None] | None = None

    def publish(self, items: list[tuple[str, bytes]]) -> asyncio.Future[None]:
        """Queue ``(Redis channel, data)`` items; the future is done when they are sent."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if not items:
            done.set_result(None)
            return done
        self.queued.extend((channel, data, done) for channel, data in items)
        if self.sender is None or self.sender.done():
            self.sender = loop.create_task(self._send())
        return done

    async def _send(self) -> None:
        while self.queued:
            batch, self.queued = self.queued, []
            by_shard: dict[Any, list[tuple[str, bytes, asyncio.Future[None]]]] = {}
            for item in batch:
                by_shard.setdefault(self.layer._get_shard(item[0]), []).append(item)
            for shard, items in by_shard.items():
                try:
                    async with shard._lock:
                        shard._ensure_redis()
                        pipe = shard._redis.pipeline(transaction=False)
                        for channel, data, _ in items:
                            pipe.publish(channel, data)
                        await pipe.execute()
                except Exception as exc:
                    for *_, done in items:
                        if not done.done():
                            done.set_exception(exc)
            for *_, done in batch:
                if not done.done():
                    done.set_result(None)


def _host_of(channel: str) -> str | None:
    """The host part of a process-local channel (``<host>!``), else None."""
    at = channel.find("!")
    return channel[: at + 1] if at >= 0 else None


class _HostLoopLayer(RedisPubSubLoopLayer):
    """The per-event-loop half of :class:`PubSubChannelLayer` (see there)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.host = f"{self.prefix}host.{uuid.uuid4().hex}!"
        self.publisher = _Publisher(self)

    async def new_channel(self, prefix: str = "specific.") -> str:
        if self.host not in self.channels:
            self.channels[self.host] = _HostQueue(self)
            try:
                await self._get_shard(self.host).subscribe(self.host)
            except BaseException:
                # Redis is away: the next channel subscribes the host again.
                del self.channels[self.host]
                raise
        channel = f"{self.host}{prefix}{uuid.uuid4().hex}"
        self.channels[channel] = asyncio.Queue()
        return channel


class _HostQueue:
    """Stands in the layer's channel table for the host's Redis channel: each message it gets
    is a batch, whose messages go to their channels' handlers (:func:`register`) or else
    queues; dropped when the channel is gone, as the pub/sub layer drops a message nobody is
    subscribed to."""

    def __init__(self, layer: _HostLoopLayer) -> None:
        self.layer = layer

    def put_nowait(self, data: bytes) -> None:
        channels = self.layer.channels
        deserialize = self.layer.channel_layer.deserialize
        for channel, message in deserialize(data)[_BATCH]:
            handler = _handler_here(channel)
            if handler is not None:
                try:
                    handler(deserialize(message))
                except Exception:
                    # Not the layer's receive task's to die of (it would stop every channel).
                    logger.exception("handler of %s failed", channel)
                continue
            queue = channels.get(channel)
            if isinstance(queue, asyncio.Queue):
                queue.put_nowait(message)
