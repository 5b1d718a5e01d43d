"""The channel layers: the embedded (single-process) mode's, and the distributed mode's."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from channels_redis.utils import _wrap_close, decode_hosts
from redis.exceptions import ConnectionError as RedisConnectionError

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
    and ``send_many`` / ``queue_many``: several messages in one write.

    - **Process-local channels.** ``new_channel`` names a channel ``<host>!<id>``, where
      ``<host>`` is the Redis channel of this process's event loop (subscribed once), in the
      form Channels reserves for process-local channels. A message to any of them is PUBLISHed
      to the host, which hands it to the channel's queue. The stock layer subscribes each
      channel on its own, so an ingest worker carrying 50 runs listened on 50 Redis channels,
      and got one Redis message per audio frame.
    - **Batches.** The stock layer sends one PUBLISH at a time per process (each waits for
      Redis' reply under the shard's lock): a Daphne forwarding audio to runs in ingest workers
      was capped at one frame per round trip, and at 5,000 frames/s the frames queued for
      seconds. ``send_many`` sends a whole batch in one write, and everything it has for
      one host as one message: a Daphne sends one PUBLISH per ingest worker per batch, and the
      worker reads one message for all of it (docs/benchmarks.md, issue 20). ``group_send``
      goes through the same publisher (``_Publisher``): an ingest worker's runs broadcast
      their events together, not one round trip each.
    - **No waiting for replies.** Each loop's publisher writes to a connection of its own as
      soon as it has something, without waiting for Redis' replies to what it wrote before;
      callers wait for their own replies only (``_Line``).

    It uses the layer's own shards and serialisation (``channels_redis`` is pinned;
    ``tests/rooms/test_layers.py`` and the distributed tests run it against a real Redis).
    Channels named by the stock layer (no ``!``) still work, so a Daphne of this version
    reaches a run of an older worker; an older Daphne cannot reach a newer worker's runs
    (docs/deploy.md: restart the Daphnes first).
    """

    def __init__(self, *args: Any, hosts: Any = None, **kwargs: Any) -> None:
        # RESP2 unless a host says otherwise. redis-py 8 speaks RESP3 by default, and there its
        # parser hands every pub/sub message to a handler that builds ``str()`` of the whole
        # message for a debug line it then drops: ~0.4 ms for a 40 KB batch of audio frames,
        # 9 % of an ingest worker's loop at 100 two-speaker sessions (docs/benchmarks.md).
        # Pub/sub needs nothing of RESP3.
        hosts = [{"protocol": 2, **host} for host in decode_hosts(hosts)]
        super().__init__(*args, hosts=hosts, **kwargs)

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
        """``send`` each ``(channel, message)``, in order, in one write per shard: one
        PUBLISH per host of process-local channels, one per message to any other channel.
        Returns when Redis has them all."""
        await self.queue_many(messages)

    def queue_many(self, messages: list[tuple[str, dict[str, Any]]]) -> asyncio.Future[None]:
        """``send_many`` without waiting: the messages are queued, in order after whatever this
        loop queued before, and the future is done when Redis has them all."""
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
        return layer.publisher.publish(
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
    """PUBLISHes of one event loop, pipelined on one connection per shard: what is asked goes
    out at once, in order, in one write for all that was asked meanwhile, without waiting for
    the replies to what went before (``_Line``). Each caller's future is done when Redis has
    acknowledged all of its messages, or has the error if any failed.

    The stock layer holds the shard's lock for one PUBLISH and its reply, so a process sent at
    most one message per round trip: an ingest worker broadcasting the finals of 50 runs
    (250/s) fell behind for good once a round trip took 4 ms (docs/benchmarks.md, issue 20).
    One pipeline at a time, waiting for its replies before the next, still held a Daphne's
    audio for a whole round trip, and a round trip on a busy box took 20-90 ms."""

    def __init__(self, layer: RedisPubSubLoopLayer) -> None:
        self.layer = layer
        self.queued: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self.sender: asyncio.Task[None] | None = None
        self.lines: dict[Any, _Line] = {}

    def publish(self, items: list[tuple[str, bytes]]) -> asyncio.Future[None]:
        """Queue ``(Redis channel, data)`` items; the future is done when Redis has them."""
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
            by_shard: dict[Any, list[tuple[str, bytes]]] = {}
            shards_of: dict[asyncio.Future[None], dict[Any, None]] = {}  # caller -> its shards
            for channel, data, done in batch:
                shard = self.layer._get_shard(channel)
                by_shard.setdefault(shard, []).append((channel, data))
                shards_of.setdefault(done, {})[shard] = None
            written: dict[Any, asyncio.Future[None]] = {}
            for shard, items in by_shard.items():
                line = self.lines.get(shard)
                if line is None:
                    line = self.lines[shard] = _Line(shard)
                written[shard] = await line.write(items)
            for done, shards in shards_of.items():
                _settle(done, [written[shard] for shard in shards])


def _settle(done: asyncio.Future[None], writes: list[asyncio.Future[None]]) -> None:
    """Make ``done`` done once every write that carries a message of its caller is
    acknowledged, or failed with the first write that fails."""
    left = len(writes)

    def acknowledged(write: asyncio.Future[None]) -> None:
        nonlocal left
        error = write.exception()  # (read even for a caller gone, or asyncio logs it)
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
            return
        left -= 1
        if not left:
            done.set_result(None)

    for write in writes:
        write.add_done_callback(acknowledged)


class _Line:
    """One connection to a shard, on which PUBLISHes are written as they come and their replies
    read, in order, by a task of its own while any are awaited. Each write has a future, done
    when Redis has acknowledged all of it. A write or read that fails fails every write not yet
    acknowledged and drops the connection; the next write opens another (messages already
    written on the old one may or may not have reached Redis, as before)."""

    def __init__(self, shard: Any) -> None:
        self.shard = shard
        self.pool: Any = None
        self.connection: Any = None
        # (messages written, the write's future), oldest first, not yet acknowledged.
        self.waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self.reader: asyncio.Task[None] | None = None
        self.reading: Any = None  # the connection the reader reads

    async def write(self, items: list[tuple[str, bytes]]) -> asyncio.Future[None]:
        """PUBLISH ``(Redis channel, data)`` items; returns once written, with the future of
        their acknowledgement (already failed when they could not be written)."""
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            async with self.shard._lock:
                self.shard._ensure_redis()
                pool = self.shard._redis.connection_pool
            if self.connection is not None and self.pool is not pool:
                # The layer was flushed since (a new client and pool): what the old connection
                # still awaits is lost with it.
                self._fail(RedisConnectionError("the channel layer was flushed"))
            if self.connection is None:
                self.pool, self.connection = pool, await pool.get_connection()
        except Exception as exc:
            acked.set_exception(exc)
            return acked
        connection = self.connection
        self.waiting.append((len(items), acked))
        try:
            await connection.send_packed_command(
                connection.pack_commands([("PUBLISH", channel, data) for channel, data in items]),
                check_health=False,
            )
        except Exception as exc:
            if connection is self.connection:
                self._fail(exc)
            return acked
        if self.reader is None or self.reader.done() or self.reading is not connection:
            # (A reader of a dropped connection ends without reading this one's replies.)
            self.reading = connection
            self.reader = asyncio.get_running_loop().create_task(self._read(connection))
        return acked

    async def _read(self, connection: Any) -> None:
        try:
            while self.waiting and connection is self.connection:
                count, acked = self.waiting[0]
                for _ in range(count):
                    # Within the connection's socket timeout, as redis-py's own commands.
                    await connection.read_response()
                    if connection is not self.connection:
                        return  # dropped meanwhile (its writes were failed): not its replies
                self.waiting.popleft()
                acked.set_result(None)
        except Exception as exc:
            if connection is self.connection:
                self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        connection, self.connection = self.connection, None
        for _, acked in self.waiting:
            acked.set_exception(exc)
        self.waiting.clear()
        if connection is not None:
            asyncio.get_running_loop().create_task(self._drop(connection, self.pool))

    @staticmethod
    async def _drop(connection: Any, pool: Any) -> None:
        await connection.disconnect(nowait=True)
        await pool.release(connection)


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
