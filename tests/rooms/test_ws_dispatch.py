"""``rooms.ws_dispatch``: a socket handles every message already queued for it in one wake-up,
in order, a bounded number at a time; any other server's ``receive`` gets Channels' own loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator

from rooms import ws_dispatch
from rooms.ws_dispatch import MAX_BATCH, BatchedDispatchMixin

pytestmark = pytest.mark.asyncio


class Recorder(BatchedDispatchMixin, AsyncWebsocketConsumer):
    seen: list[str]

    async def connect(self) -> None:
        self.seen = []
        Recorder.last = self
        await self.accept()

    async def dispatch(self, message: dict) -> None:
        # Straight to the handler, as the transcript socket does for frames (Channels' own
        # ``dispatch`` first hops to a thread to close stale database connections).
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.seen.append(text_data or "")


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _connected(consumer: type[Recorder] = Recorder) -> tuple[WebsocketCommunicator, Any]:
    """A connected ``consumer``, waiting for its next message."""
    communicator = WebsocketCommunicator(consumer.as_asgi(), "/ws/test/")
    connected, _ = await communicator.connect()
    assert connected
    await _turns(3)
    return communicator, Recorder.last


async def test_what_queued_meanwhile_is_handled_in_one_wake_up_in_order() -> None:
    communicator, consumer = await _connected()
    try:
        for i in range(50):
            # Queued without yielding: as a server's reads while the loop was busy.
            communicator.input_queue.put_nowait({"type": "websocket.receive", "text": str(i)})
        # Channels' own loop takes about three turns of the event loop per message.
        await _turns(6)
        assert consumer.seen == [str(i) for i in range(50)]
    finally:
        await communicator.disconnect()


async def test_a_flood_is_handled_a_bounded_batch_per_wake_up() -> None:
    communicator, consumer = await _connected()
    try:
        total = 3 * MAX_BATCH
        for i in range(total):
            communicator.input_queue.put_nowait({"type": "websocket.receive", "text": str(i)})
        await _turns(3)
        assert 0 < len(consumer.seen) <= MAX_BATCH
        await _turns(30)
        assert consumer.seen == [str(i) for i in range(total)]
    finally:
        await communicator.disconnect()


async def test_a_disconnect_among_queued_messages_ends_the_consumer() -> None:
    communicator, consumer = await _connected()
    for text in ("a", "b"):
        communicator.input_queue.put_nowait({"type": "websocket.receive", "text": text})
    communicator.input_queue.put_nowait({"type": "websocket.disconnect", "code": 1000})
    communicator.input_queue.put_nowait({"type": "websocket.receive", "text": "after"})
    await asyncio.wait_for(communicator.future, 5)
    assert consumer.seen == ["a", "b"]


async def test_another_servers_receive_gets_channels_own_loop() -> None:
    queue: asyncio.Queue[dict] = asyncio.Queue()

    async def receive() -> dict:  # not an asyncio.Queue's get
        return await queue.get()

    assert ws_dispatch.receive_queue(receive) is None
    assert ws_dispatch.receive_queue(queue.get) is queue
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/ws/test/", "headers": [], "subprotocols": []}
    app = asyncio.create_task(Recorder.as_asgi()(scope, receive, send))
    for message in (
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "x"},
        {"type": "websocket.disconnect", "code": 1000},
    ):
        queue.put_nowait(message)
    await asyncio.wait_for(app, 5)
    assert sent[0]["type"] == "websocket.accept"
    assert Recorder.last.seen == ["x"]


class Taker(Recorder):
    """Takes binary messages at once while it waits (``take_binary``), unless told not to."""

    refuse = False

    async def connect(self) -> None:
        self.taken: list[bytes] = []
        await super().connect()

    def take_binary(self, payload: bytes) -> bool:
        if self.refuse:
            return False
        self.taken.append(payload)
        return True

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.seen.append(text_data if text_data is not None else f"bytes:{bytes_data!r}")
        if text_data == "slow":
            await asyncio.sleep(0.05)


async def test_a_waiting_consumer_takes_a_binary_message_at_once() -> None:
    communicator, consumer = await _connected(Taker)
    try:
        queue = communicator.input_queue
        assert ws_dispatch.offer_binary(queue, b"frame")
        # Taken in the call: nothing queued, nothing for its message loop to do.
        assert consumer.taken == [b"frame"]
        assert queue.empty()
        await _turns(3)
        assert consumer.seen == []
    finally:
        await communicator.disconnect()


async def test_nothing_overtakes_a_message_the_consumer_has_not_handled() -> None:
    communicator, consumer = await _connected(Taker)
    try:
        queue = communicator.input_queue
        queue.put_nowait({"type": "websocket.receive", "text": "first"})
        # Queued, not yet read: the binary message must queue behind it.
        assert not ws_dispatch.offer_binary(queue, b"queued")
        queue.put_nowait({"type": "websocket.receive", "bytes": b"queued"})
        await _turns(6)
        assert consumer.seen == ["first", "bytes:b'queued'"]
        # Read by the consumer's waiting task (one turn) but not handled yet (a turn later).
        queue.put_nowait({"type": "websocket.receive", "text": "second"})
        await asyncio.sleep(0)
        assert queue.empty() and consumer.seen[-1] != "second"
        assert not ws_dispatch.offer_binary(queue, b"held")
        queue.put_nowait({"type": "websocket.receive", "bytes": b"held"})  # as the server does
        await _turns(6)
        assert consumer.seen[-2:] == ["second", "bytes:b'held'"]
        # Handling a slow message: the consumer waits for nothing, so it takes nothing.
        queue.put_nowait({"type": "websocket.receive", "text": "slow"})
        for _ in range(20):
            await asyncio.sleep(0)
            if consumer.seen[-1:] == ["slow"]:
                break
        assert consumer.seen[-1:] == ["slow"]
        assert not ws_dispatch.offer_binary(queue, b"while-busy")
        queue.put_nowait({"type": "websocket.receive", "bytes": b"while-busy"})
        await asyncio.sleep(0.1)
        assert consumer.seen[-1] == "bytes:b'while-busy'" and consumer.taken == []
        # Once it waits again with nothing in hand, it takes the next one at once.
        assert ws_dispatch.offer_binary(queue, b"later")
        assert consumer.taken == [b"later"]
    finally:
        await communicator.disconnect()


async def test_a_refused_binary_message_is_left_to_the_queue() -> None:
    communicator, consumer = await _connected(Taker)
    try:
        consumer.refuse = True
        assert not ws_dispatch.offer_binary(communicator.input_queue, b"x")
        assert consumer.taken == []
    finally:
        await communicator.disconnect()


async def test_a_consumer_without_take_binary_offers_nothing() -> None:
    communicator, _ = await _connected()
    try:
        assert not ws_dispatch.offer_binary(communicator.input_queue, b"x")
    finally:
        await communicator.disconnect()
