"""Celery's broker transport: kombu's Redis transport, with one fault of kombu 5.7 mended.

When the worker loses Redis, Celery 5.7 first collects the lost connection, which detaches
its transport, then closes it. Closing the consumer's channel gives back the messages it has
not acknowledged yet (a task with ``acks_late`` running at that moment: an analysis, the
supervisor) through a new Redis client, whose address comes from the detached transport.
With kombu's own transport that is an ``AttributeError``; Celery takes it as unrecoverable,
the worker's consumer stops for good, and the worker runs out its tasks and takes no new one:
an ingest worker that no run reaches any more (``tests/faults/test_redis_restart.py``).

Here a detached transport is what it means, a lost connection: the error Celery already
handles by reconnecting. The messages stay where Redis keeps unacknowledged ones, and kombu
delivers them again after the visibility timeout, as after any lost connection.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel
