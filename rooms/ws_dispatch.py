"""WebSocket consumers that handle every message already waiting for them in one wake-up.

Channels' ``AsyncConsumer`` waits for its next message with ``await_many_dispatch``: a new task
per message, and an ``asyncio.wait`` around it. A message so takes about three turns of the
event loop to reach its handler, and a socket is served at most one message per three turns,
however many wait in its queue. A socket that sends audio (25 frames/s) falls behind as soon as a
turn of the loop takes more than ~13 ms, and then never catches up: with 100 two-speaker
sessions through two Daphnes (``make up``), the loops turned every 20-90 ms at well under a
core of CPU, and each Daphne's queues grew to 30,000 frames (12 s of audio) over a 20 s run
(docs/benchmarks.md, issue 20).

Here, once a message arrives, the messages queued behind it are dispatched too, in order, up
to ``MAX_BATCH`` (so that one flooding socket cannot hold the loop), before the consumer waits
again: the cost of waiting is paid per wake-up, not per message. Only the server's receive
queue is drained this way; it is an ``asyncio.Queue`` under Daphne and Channels' test
communicators. Any other ``receive`` (another server) gets Channels' own loop.

**Binary messages taken at once.** A consumer may also define ``take_binary(payload) -> bool``:
while it waits for messages with nothing queued, it offers the function on its receive queue
(``queue.take_binary``), and our Daphne (``rooms.serve``) calls it for a binary message instead
of queueing it (:func:`offer_binary`); ``False`` means "not here", and the message is queued as
before. An audio frame thus costs one call, not a queue put, a task, an ``asyncio.wait`` and
three turns of the loop (docs/benchmarks.md, issue 20). Order holds: it is taken only while the
consumer handles nothing, its queue is empty and its read of the queue is still waiting (not
woken with a message it has yet to handle), so it cannot overtake one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer

MAX_BATCH = 100
"""Messages a socket handles per wake-up: 4 s of audio frames, a small share of a loop turn."""

Receive = Callable[[], Awaitable[dict[str, Any]]]
Dispatch = Callable[[dict[str, Any]], Awaitable[None]]
TakeBinary = Callable[[bytes], bool]

TAKE_BINARY = "take_binary"
"""The receive queue's attribute that holds the consumer's ``take_binary`` while it waits."""


def receive_queue(receive: Receive) -> asyncio.Queue[dict[str, Any]] | None:
    """The queue behind ``receive`` when it is an ``asyncio.Queue``'s ``get``, else None."""
    queue = getattr(receive, "__self__", None)
    if isinstance(queue, asyncio.Queue) and getattr(receive, "__func__", None) is asyncio.Queue.get:
        return queue
    return None


def offer_binary(queue: asyncio.Queue[dict[str, Any]], payload: bytes) -> bool:
    """For the server: give ``payload`` to the consumer reading ``queue`` at once, if it offers
    ``take_binary`` and holds no message of ``queue``; True when it took it."""
    take: TakeBinary | None = getattr(queue, TAKE_BINARY, None)
    # ``_getters``: reads of the queue still waiting (a read woken by a put leaves it at once).
    if take is None or not queue.empty() or not queue._getters:  # type: ignore[attr-defined]
        return False
    return take(payload)


async def dispatch_batched(
    queue: asyncio.Queue[dict[str, Any]],
    sources: list[Receive],
    dispatch: Dispatch,
    take_binary: TakeBinary | None = None,
) -> None:
    """``channels.utils.await_many_dispatch`` over ``sources`` (the first reads ``queue``), except
    that when the first yields a message, what ``queue`` already holds is dispatched with it;
    ``take_binary`` is offered on ``queue`` while it waits (module docstring)."""
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(source()) for source in sources]
    try:
        while True:
            setattr(queue, TAKE_BINARY, take_binary)
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                setattr(queue, TAKE_BINARY, None)
            for i, task in enumerate(tasks):
                if not task.done():
                    continue
                await dispatch(task.result())
                if i == 0:
                    for _ in range(MAX_BATCH - 1):
                        try:
                            message = queue.get_nowait()
                        except asyncio.QueueEmpty:
                            break
                        await dispatch(message)
                tasks[i] = loop.create_task(sources[i]())
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class BatchedDispatchMixin:
    """Put before ``AsyncWebsocketConsumer``: its ``__call__`` (the same set-up: scope, channel
    layer and channel, ``base_send``) with :func:`dispatch_batched` as the message loop."""

    channel_layer_alias: str
    dispatch: Dispatch

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Any) -> None:
        queue = receive_queue(receive)
        if queue is None:
            await super().__call__(scope, receive, send)  # type: ignore[misc]
            return
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        self.base_send = send
        take_binary = getattr(self, TAKE_BINARY, None)
        with contextlib.suppress(StopConsumer):
            await dispatch_batched(queue, sources, self.dispatch, take_binary)
