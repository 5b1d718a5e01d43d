"""The Redis cache opens connections per process, not per WebSocket: Django keeps a cache
object per async context, and every socket runs in one of its own (``rooms.cache``)."""

from __future__ import annotations

import asyncio
import gc
import threading
import uuid

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings

pytestmark = pytest.mark.asyncio
# The test command starts Redis and sets REDIS_URL (scripts/test.sh).
REDIS_URL = settings.REDIS_URL


def _connections_named(name: str) -> int:
    with redis.Redis.from_url(REDIS_URL) as admin:
        return sum(1 for client in admin.client_list() if client.get("name") == name)


async def test_sockets_share_one_connection_pool_however_many_contexts_use_the_cache() -> None:
    name = f"cache-test-{uuid.uuid4().hex[:8]}"
    caches = {
        "default": {
            "BACKEND": "rooms.cache.SharedRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"client_name": name},
        }
    }
    threads: set[int] = set()
    objects: set[int] = set()

    def touch(i: int) -> None:
        threads.add(threading.get_ident())
        objects.add(id(cache._connections[cache._alias]))  # type: ignore[attr-defined]
        assert cache.add(f"{name}:{i}", i, timeout=30)
        cache.delete(f"{name}:{i}")

    async def socket(i: int) -> None:  # a task is a context, as a Daphne socket is
        await sync_to_async(touch, thread_sensitive=False)(i)

    gc.disable()  # the connections of a per-context client lived until the cyclic collector ran
    try:
        with override_settings(CACHES=caches):
            for round_ in range(3):
                await asyncio.gather(
                    *(asyncio.create_task(socket(round_ * 100 + i)) for i in range(100))
                )
            open_connections = _connections_named(name)
    finally:
        gc.enable()
    assert len(objects) > 1, "each context has its own cache object, as under Daphne"
    # Connections are made on demand by the threads that use them, at most one per thread.
    assert 1 <= open_connections <= len(threads) < 300
