"""``rooms.ws_dispatch``: a socket handles every message already queued for it in one wake-up,
in order, a bounded number at a time; any other server's ``receive`` gets Channels' own loop."""

from __future__ import annotations

import asyncio

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


async def _connected() -> tuple[WebsocketCommunicator, Recorder]:
    communicator = WebsocketCommunicator(Recorder.as_asgi(), "/ws/test/")
    connected, _ = await communicator.connect()
    assert connected
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
