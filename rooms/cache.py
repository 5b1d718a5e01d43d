"""Django's Redis cache with one client, and so one connection pool, per process.

Django keeps a cache object per async context (``caches`` is an asgiref ``Local`` that is not
thread-critical), and ``RedisCache`` builds its client, with its own redis-py connection pool,
per object. Under Daphne every WebSocket runs in a context of its own, so every socket that
touched the cache (presence, mesh slots, throttles, catch-up) opened a Redis connection of its
own, closed only when the cyclic garbage collector found the dead cache object: after a few
fan-out rounds a Daphne held ~5,000 connections and Redis refused new clients
(``maxclients``, docs/benchmarks.md). The client and its pools are thread-safe, and redis-py
resets a pool inherited across a fork, so every cache object of one configuration in a process
shares one client here.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property


class SharedRedisCache(RedisCache):
    _clients: ClassVar[dict[tuple[Any, ...], RedisCacheClient]] = {}
    _clients_lock: ClassVar[threading.Lock] = threading.Lock()

    @cached_property
    def _cache(self) -> RedisCacheClient:
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._class(self._servers, **self._options)
            return client
