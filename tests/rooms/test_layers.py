"""Batched sends to runs: ``PubSubChannelLayer.send_many`` over a real Redis, and the outbox
that feeds it (``transcription.live.local.forward``), in order, with the in-memory layer too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
import redis.exceptions
from django.conf import settings
from django.test import override_settings

from rooms.layers import EmbeddedChannelLayer, PubSubChannelLayer
from transcription.live import local

pytestmark = pytest.mark.asyncio
# The test command starts Redis and sets REDIS_URL (scripts/test.sh).
REDIS_URL = settings.REDIS_URL


async def _subscribed(layer, channel: str) -> asyncio.Task:
    """A receive on ``channel`` (pub/sub: the subscription is made by the first receive)."""
    first = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0.3)
    return first


async def test_send_many_publishes_every_message_in_order_to_each_channel() -> None:
    layer = PubSubChannelLayer(hosts=[REDIS_URL])
    try:
        a, b = await layer.new_channel("run."), await layer.new_channel("run.")
        first_a, first_b = await _subscribed(layer, a), await _subscribed(layer, b)
        await layer.send_many(
            [
                (a if i % 3 else b, {"type": "audio.frame", "n": i, "pcm": bytes([i])})
                for i in range(30)
            ]
        )
        got_a = [(await first_a)["n"]] + [(await layer.receive(a))["n"] for _ in range(19)]
        got_b = [(await first_b)["n"]] + [(await layer.receive(b))["n"] for _ in range(9)]
        assert got_a == [i for i in range(30) if i % 3]
        assert got_b == [i for i in range(30) if not i % 3]
    finally:
        await layer.flush()


@pytest.mark.parametrize("kind", ["redis", "embedded"])
async def test_forward_sends_what_a_loop_queued_in_order_and_returns_at_once(kind: str) -> None:
    layer = (
        PubSubChannelLayer(hosts=[REDIS_URL])
        if kind == "redis"
        else EmbeddedChannelLayer(capacity=2000)
    )
    try:
        channel = await layer.new_channel("run.")
        first = await _subscribed(layer, channel)
        for i in range(200):
            local.forward(layer, channel, {"type": "audio.frame", "n": i})
        # Nothing was awaited: the sends are the outbox's, in one batch after this yield.
        got = [(await asyncio.wait_for(first, 5))["n"]]
        got += [(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(199)]
        assert got == list(range(200))
    finally:
        await layer.flush()


class _CountingLayer(PubSubChannelLayer):
    """The real layer, keeping the size of every batch queued (``queue_many``, the outbox's)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.batches: list[int] = []

    def queue_many(self, messages: list) -> asyncio.Future[None]:
        self.batches.append(len(messages))
        return super().queue_many(messages)


@override_settings(TRANSCRIPTION_JITTER_SECONDS=5.0)
async def test_forward_sends_what_comes_within_its_wait_in_one_round_trip() -> None:
    # A long interval (a tenth of this jitter allowance), so that a slow box cannot make the
    # turns below span it.
    assert local.send_every_seconds() == pytest.approx(0.5)
    layer = _CountingLayer(hosts=[REDIS_URL])
    try:
        channel = await layer.new_channel("run.")
        first = await _subscribed(layer, channel)
        started = asyncio.get_running_loop().time()
        local.forward(layer, channel, {"type": "audio.frame", "n": 0})
        # Frames arrive one socket read at a time: turns of the loop apart. Sending as soon as
        # the outbox's task ran would have sent the first one alone.
        for _ in range(5):
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        for n in (1, 2):
            local.forward(layer, channel, {"type": "audio.frame", "n": n})
        got = [(await asyncio.wait_for(first, 5))["n"]]
        waited = asyncio.get_running_loop().time() - started
        got += [(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(2)]
        assert got == [0, 1, 2]
        assert layer.batches == [3]
        assert waited >= 0.5
        # What comes after a batch left waits for the next one, in order.
        for n in (3, 4):
            local.forward(layer, channel, {"type": "audio.frame", "n": n})
        got = [(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(2)]
        assert got == [3, 4]
        assert layer.batches == [3, 2]
    finally:
        await layer.flush()


async def test_a_run_on_this_loop_takes_its_messages_directly() -> None:
    seen: list[dict] = []
    local.register("run.here", seen.append)
    try:
        assert local.deliver("run.here", {"type": "run.stop"})
        assert not local.deliver("run.elsewhere", {"type": "run.stop"})
        assert seen == [{"type": "run.stop"}]
    finally:
        local.unregister("run.here")
    assert not local.deliver("run.here", {"type": "run.stop"})


async def test_a_process_listens_on_one_redis_channel_for_all_its_channels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Channels of one process (here: one layer, as in an ingest worker carrying many runs) are
    ``<host>!<id>``: one Redis subscription for all of them, one PUBLISH per host per batch, and
    each message still reaches its own channel, in order; a message to a channel that is gone is
    dropped without disturbing the others."""
    from rooms import layers

    worker, daphne = PubSubChannelLayer(hosts=[REDIS_URL]), PubSubChannelLayer(hosts=[REDIS_URL])
    client = redis.Redis.from_url(REDIS_URL)
    try:
        runs = [await worker.new_channel("transcription.run.") for _ in range(20)]
        host = runs[0].split("!")[0] + "!"
        assert all(run.startswith(host) for run in runs)
        assert client.pubsub_channels(f"{host}*") == [host.encode()]
        assert not client.pubsub_channels("*transcription.run.*")
        gone = await worker.new_channel("transcription.run.")
        receiving = asyncio.create_task(worker.receive(gone))
        await asyncio.sleep(0.1)
        receiving.cancel()  # as a run that ended
        with pytest.raises(asyncio.CancelledError):
            await receiving

        monkeypatch.setattr(layers, "MAX_BATCH_MESSAGES", 7)  # several PUBLISHes per host too
        frames = [(runs[i % 20], {"type": "audio.frame", "n": i}) for i in range(200)]
        frames.insert(7, (gone, {"type": "audio.frame", "n": -1}))
        await daphne.send_many(frames)
        await daphne.send(runs[3], {"type": "run.stop"})
        for k, run in enumerate(runs):
            got = [(await asyncio.wait_for(worker.receive(run), 5))["n"] for _ in range(10)]
            assert got == list(range(k, 200, 20))
        assert (await asyncio.wait_for(worker.receive(runs[3]), 5)) == {"type": "run.stop"}
    finally:
        client.close()
        await worker.flush()
        await daphne.flush()


async def test_a_registered_handler_takes_its_messages_straight_from_the_host_batch() -> None:
    """In an ingest worker a run's handler gets its frames from the batch the layer read, in
    order, without its queue; a handler that raises is logged and the other channels go on."""
    from rooms import layers

    worker, daphne = PubSubChannelLayer(hosts=[REDIS_URL]), PubSubChannelLayer(hosts=[REDIS_URL])
    run, broken, queued = [await worker.new_channel("transcription.run.") for _ in range(3)]
    seen: list[int] = []

    def fail(message: dict) -> None:
        raise ValueError("bad frame")

    layers.register(run, lambda message: seen.append(message["n"]))
    layers.register(broken, fail)
    try:
        await daphne.send_many(
            [(c, {"type": "audio.frame", "n": i}) for i in range(10) for c in (broken, run)]
        )
        await daphne.send(queued, {"type": "run.stop"})
        # The queued channel's message came after the batch: the batch was handled by then.
        assert await asyncio.wait_for(worker.receive(queued), 5) == {"type": "run.stop"}
        assert seen == list(range(10))
        assert worker._get_layer().channels[run].empty()
    finally:
        layers.unregister(run)
        layers.unregister(broken)
        await worker.flush()
        await daphne.flush()


async def test_a_host_whose_subscription_failed_is_subscribed_by_the_next_channel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis away when a process made its first channel: that ``new_channel`` fails, and the
    next one subscribes the host (it is not taken as subscribed)."""
    worker, daphne = PubSubChannelLayer(hosts=[REDIS_URL]), PubSubChannelLayer(hosts=[REDIS_URL])
    loop_layer = worker._get_layer()
    shard = loop_layer._get_shard(loop_layer.host)
    subscribe = shard.subscribe

    async def away(channel: str) -> None:
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(shard, "subscribe", away)
    try:
        with pytest.raises(ConnectionError):
            await worker.new_channel("transcription.run.")
        monkeypatch.setattr(shard, "subscribe", subscribe)
        run = await worker.new_channel("transcription.run.")
        await daphne.send(run, {"type": "run.stop"})
        assert await asyncio.wait_for(worker.receive(run), 5) == {"type": "run.stop"}
    finally:
        await worker.flush()
        await daphne.flush()


async def test_group_sends_of_a_loop_share_round_trips_and_keep_each_group_s_order() -> None:
    sender = PubSubChannelLayer(hosts=[REDIS_URL])
    receiver = PubSubChannelLayer(hosts=[REDIS_URL])
    try:
        inboxes = {}
        for group in ("session.a", "session.b"):
            inboxes[group] = await receiver.new_channel("sock.")
            await receiver.group_add(group, inboxes[group])
        firsts = {g: await _subscribed(receiver, c) for g, c in inboxes.items()}
        # Count what is written to Redis (redis-py's connection, spied on: the layer is not
        # replaced), and the stock layer's one-PUBLISH-per-round-trip path too.
        await sender.group_send("session.a", {"type": "warm", "n": -1})
        layer = sender._get_layer()
        shard = layer._get_shard(layer._get_group_channel_name("x"))
        connection = layer.publisher.lines[shard].connection
        writes = 0
        write = connection.send_packed_command

        async def counting_write(*args, **kwargs):
            nonlocal writes
            writes += 1
            return await write(*args, **kwargs)

        connection.send_packed_command = counting_write
        publish_one = shard._redis.publish

        def counting_publish(*args, **kwargs):
            nonlocal writes
            writes += 1
            return publish_one(*args, **kwargs)

        shard._redis.publish = counting_publish
        # 100 runs' events at once, each awaiting its own group_send, as an ingest worker's do.
        await asyncio.gather(
            *(
                sender.group_send("session.a" if i % 2 else "session.b", {"type": "t", "n": i})
                for i in range(100)
            )
        )
        assert 1 <= writes <= 3, f"{writes} writes for 100 group messages"
        got = {g: [] for g in inboxes}
        for group, channel in inboxes.items():
            first = await asyncio.wait_for(firsts[group], 5)
            messages = [first] + [
                await asyncio.wait_for(receiver.receive(channel), 5)
                for _ in range(50 if group == "session.a" else 49)  # a also has "warm"
            ]
            got[group] = [m["n"] for m in messages if m["type"] == "t"]
        assert got["session.a"] == [i for i in range(100) if i % 2]
        assert got["session.b"] == [i for i in range(100) if not i % 2]
    finally:
        await sender.flush()
        await receiver.flush()


async def test_a_group_send_that_cannot_reach_redis_raises_for_every_caller() -> None:
    from tests.live import free_port

    layer = PubSubChannelLayer(hosts=[f"redis://127.0.0.1:{free_port()}/0"])
    results = await asyncio.wait_for(
        asyncio.gather(
            *(layer.group_send("session.x", {"type": "t", "n": i}) for i in range(5)),
            return_exceptions=True,
        ),
        10,
    )
    assert len(results) == 5 and all(isinstance(r, Exception) for r in results), results


class _ReplyGate:
    """A TCP proxy to the test's Redis that passes commands on at once and holds Redis' replies
    while it is shut: what a slow round trip looks like to the sender, with nothing timed."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{urlsplit(REDIS_URL).path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = urlsplit(REDIS_URL)
        up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port)
        self.writers += [writer, up_writer]

        async def pump(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, gated: bool
        ) -> None:
            try:
                while data := await source.read(65536):
                    if gated:
                        await self.open.wait()
                    sink.write(data)
                    await sink.drain()
            except OSError:  # a connection the test dropped
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(reader, up_writer, False), pump(up_reader, writer, True))

    def drop(self) -> None:
        """Close every connection through the proxy (it still takes new ones)."""
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def close(self) -> None:
        self.open.set()
        self.drop()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest_asyncio.fixture
async def gate() -> AsyncIterator[tuple[_ReplyGate, PubSubChannelLayer, PubSubChannelLayer]]:
    proxy = _ReplyGate()
    url = await proxy.start()
    sender = PubSubChannelLayer(hosts=[url])
    receiver = PubSubChannelLayer(hosts=[REDIS_URL])
    try:
        yield proxy, sender, receiver
    finally:
        await sender.flush()
        await receiver.flush()
        await proxy.close()


async def _group_inbox(sender: PubSubChannelLayer, receiver: PubSubChannelLayer) -> str:
    """A socket's channel of ``receiver`` in group ``session.a``, once a group message from
    ``sender`` reached it (connected, Redis' replies flowing)."""
    inbox = await receiver.new_channel("sock.")
    await receiver.group_add("session.a", inbox)
    first = await _subscribed(receiver, inbox)
    await sender.group_send("session.a", {"type": "t", "n": 0})
    assert (await asyncio.wait_for(first, 5))["n"] == 0
    return inbox


async def test_the_outbox_sends_its_next_batch_before_redis_replied_to_the_last(gate) -> None:
    """A Daphne's audio to runs elsewhere does not wait for Redis' reply to the frames before:
    while it did, a slow round trip on a busy box held every socket's frames behind it."""
    proxy, sender, receiver = gate
    run = await receiver.new_channel("transcription.run.")
    first = await _subscribed(receiver, run)
    local.forward(sender, run, {"type": "audio.frame", "n": 0})
    assert (await asyncio.wait_for(first, 5))["n"] == 0  # connected, replies flowing
    proxy.open.clear()
    local.forward(sender, run, {"type": "audio.frame", "n": 1})
    assert (await asyncio.wait_for(receiver.receive(run), 5))["n"] == 1
    # Frame 1 went out in a batch of its own, and Redis' reply to it is held: frame 2 still
    # goes out at its time.
    local.forward(sender, run, {"type": "audio.frame", "n": 2})
    assert (await asyncio.wait_for(receiver.receive(run), 5))["n"] == 2
    proxy.open.set()
    local.forward(sender, run, {"type": "audio.frame", "n": 3})
    assert (await asyncio.wait_for(receiver.receive(run), 5))["n"] == 3


async def test_a_send_is_written_at_once_and_each_caller_waits_for_its_own_reply(gate) -> None:
    proxy, sender, receiver = gate
    inbox = await _group_inbox(sender, receiver)
    proxy.open.clear()
    one = asyncio.ensure_future(sender.group_send("session.a", {"type": "t", "n": 1}))
    assert (await asyncio.wait_for(receiver.receive(inbox), 5))["n"] == 1
    two = asyncio.ensure_future(sender.group_send("session.a", {"type": "t", "n": 2}))
    assert (await asyncio.wait_for(receiver.receive(inbox), 5))["n"] == 2
    # Both reached Redis, and neither caller has heard so.
    assert not one.done() and not two.done()
    proxy.open.set()
    assert await asyncio.wait_for(asyncio.gather(one, two), 5) == [None, None]


async def test_a_connection_lost_with_replies_awaited_fails_those_sends_and_the_next_reconnects(
    gate,
) -> None:
    proxy, sender, receiver = gate
    inbox = await _group_inbox(sender, receiver)
    proxy.open.clear()
    waiting = [
        asyncio.ensure_future(sender.group_send("session.a", {"type": "t", "n": n})) for n in (1, 2)
    ]
    for n in (1, 2):
        assert (await asyncio.wait_for(receiver.receive(inbox), 5))["n"] == n
    proxy.drop()
    results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 5)
    assert all(isinstance(r, redis.exceptions.ConnectionError) for r in results), results
    proxy.open.set()
    await asyncio.wait_for(sender.group_send("session.a", {"type": "t", "n": 3}), 5)
    assert (await asyncio.wait_for(receiver.receive(inbox), 5))["n"] == 3


async def test_the_outbox_holds_new_frames_while_too_many_are_unacknowledged(
    gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not waiting for replies keeps its bound: while ``MAX_QUEUED`` messages are sent and not
    acknowledged the outbox sends no more, then queues up to ``MAX_QUEUED`` and drops the rest,
    as it did while Redis was away."""
    proxy, sender, receiver = gate
    monkeypatch.setattr(local, "MAX_QUEUED", 3)
    run = await receiver.new_channel("transcription.run.")
    first = await _subscribed(receiver, run)
    local.forward(sender, run, {"type": "audio.frame", "n": -1})
    assert (await asyncio.wait_for(first, 5))["n"] == -1
    proxy.open.clear()
    for n in range(3):
        local.forward(sender, run, {"type": "audio.frame", "n": n})
    got = [(await asyncio.wait_for(receiver.receive(run), 5))["n"] for _ in range(3)]
    assert got == [0, 1, 2]
    for n in range(3, 7):  # 6: one more than the outbox may hold
        local.forward(sender, run, {"type": "audio.frame", "n": n})
    await asyncio.sleep(0.5)
    assert receiver._get_layer().channels[run].empty()  # (a receive cancelled would unsubscribe)
    proxy.open.set()
    got = [(await asyncio.wait_for(receiver.receive(run), 5))["n"] for _ in range(3)]
    assert got == [3, 4, 5]
    local.forward(sender, run, {"type": "audio.frame", "n": 7})
    assert (await asyncio.wait_for(receiver.receive(run), 5))["n"] == 7


async def test_the_layer_speaks_resp2_to_redis() -> None:
    """redis-py 8 speaks RESP3 unless told otherwise, and there each pub/sub message it reads
    costs a ``str()`` of the whole message (a debug line built, then dropped)."""
    layer = PubSubChannelLayer(hosts=[REDIS_URL])
    client = redis.Redis.from_url(REDIS_URL)
    try:
        before = {c["id"] for c in client.client_list()}
        channel = await layer.new_channel("run.")  # the subscription's connection
        first = await _subscribed(layer, channel)
        await layer.send(channel, {"type": "run.stop"})  # the publisher's connection
        assert await asyncio.wait_for(first, 5) == {"type": "run.stop"}
        # The connections the layer opened (nothing else in this process opens any meanwhile).
        opened = [c for c in client.client_list() if c["id"] not in before]
        assert {c["cmd"] for c in opened} == {"publish", "subscribe"}, opened
        assert {c["resp"] for c in opened} == {"2"}, opened
    finally:
        client.close()
        await layer.flush()


async def test_a_layer_flushed_with_replies_awaited_fails_those_and_sends_again_after(gate) -> None:
    proxy, sender, receiver = gate
    inbox = await _group_inbox(sender, receiver)
    line = next(iter(sender._get_layer().publisher.lines.values()))
    old = line.connection
    proxy.open.clear()
    waiting = asyncio.ensure_future(sender.group_send("session.a", {"type": "t", "n": 1}))
    assert (await asyncio.wait_for(receiver.receive(inbox), 5))["n"] == 1
    await sender.flush()  # as at shutdown: its client and pool are closed
    with pytest.raises(redis.exceptions.ConnectionError):
        await asyncio.wait_for(waiting, 5)
    proxy.open.set()
    await asyncio.wait_for(sender.group_send("session.a", {"type": "t", "n": 2}), 5)
    assert (await asyncio.wait_for(receiver.receive(inbox), 5))["n"] == 2
    line = next(iter(sender._get_layer().publisher.lines.values()))
    assert line.connection is not old


async def test_a_send_to_several_shards_waits_for_the_replies_of_all_of_them() -> None:
    """Two shards (the test's Redis reached through the reply gate, and directly): a caller is
    answered when both have acknowledged its messages, not when the first has."""
    proxy = _ReplyGate()
    through_gate = await proxy.start()
    sender = PubSubChannelLayer(hosts=[through_gate, REDIS_URL])
    receivers: dict[int, PubSubChannelLayer] = {}
    try:
        # A receiver per shard: a process's channels all go to the shard of its host channel.
        while len(receivers) < 2:
            receiver = PubSubChannelLayer(hosts=[REDIS_URL, REDIS_URL])
            host = receiver._get_layer().host
            index = sender._get_layer()._get_shard(host) is not sender._get_layer()._shards[0]
            if index in receivers:
                continue
            receivers[index] = receiver
        inboxes = {i: await r.new_channel("run.") for i, r in receivers.items()}
        firsts = {i: await _subscribed(receivers[i], inboxes[i]) for i in receivers}
        await sender.send_many([(inboxes[i], {"type": "t", "n": 0}) for i in receivers])
        assert [(await asyncio.wait_for(firsts[i], 5))["n"] for i in (0, 1)] == [0, 0]
        proxy.open.clear()
        both = asyncio.ensure_future(
            sender.send_many([(inboxes[i], {"type": "t", "n": 1}) for i in receivers])
        )
        for i in (0, 1):
            assert (await asyncio.wait_for(receivers[i].receive(inboxes[i]), 5))["n"] == 1
        await asyncio.sleep(0.2)  # the direct shard's reply is in by now
        assert not both.done()
        proxy.open.set()
        await asyncio.wait_for(both, 5)
    finally:
        await sender.flush()
        for receiver in receivers.values():
            await receiver.flush()
        await proxy.close()
