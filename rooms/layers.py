"""The channel layers: the embedded (single-process) mode's, and the distributed mode's."""

from __future__ import annotations

import time
from typing import Any

from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer


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


class PubSubChannelLayer(RedisPubSubChannelLayer):
    """Channels Redis' pub/sub layer, plus ``send_many``: several messages in one round trip.

    The stock layer sends one PUBLISH at a time per process (each waits for Redis' reply under
    the shard's lock), so a Daphne forwarding audio frames to runs in ingest workers was capped
    at one frame per round trip: at 5,000 frames/s the frames queued for seconds
    (docs/benchmarks.md, distributed mode). ``send_many`` PUBLISHes a whole batch in one
    pipeline. It uses the layer's own shards and serialisation (``channels_redis`` is pinned; the
    distributed tests exercise this path against a real Redis).
    """

    async def send_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """``send`` each ``(channel, message)``, in order, in one round trip per shard."""
        layer = self._get_layer()
        by_shard: dict[Any, list[tuple[str, bytes]]] = {}
        for channel, message in messages:
            shard = layer._get_shard(channel)
            by_shard.setdefault(shard, []).append((channel, self.serialize(message)))
        for shard, items in by_shard.items():
            async with shard._lock:
                shard._ensure_redis()
                pipe = shard._redis.pipeline(transaction=False)
                for channel, data in items:
                    pipe.publish(channel, data)
                await pipe.execute()
