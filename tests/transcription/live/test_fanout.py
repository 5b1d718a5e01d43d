"""transcription.live.fanout: one group member per process, order kept, failures contained.

These run against Channels' in-memory layer (the embedded mode's); the Redis pub/sub layer is
covered by the make up, fault and hostile tests, whose Daphnes use the same fan-out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rooms.layers import EmbeddedChannelLayer
from transcription.live.fanout import Fanout, encoded, fanout_for

GROUP = "session.1"


class Socket:
    """A listener that records what it was given."""

    def __init__(self, fail: bool = False) -> None:
        self.got: list[Any] = []
        self.fail = fail

    async def group_message(self, message: dict[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("socket gone")
        self.got.append(message["n"])


async def until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def layer() -> EmbeddedChannelLayer:
    return EmbeddedChannelLayer(capacity=100)


@pytest.mark.asyncio
async def test_the_process_joins_a_group_once_however_many_sockets_it_has() -> None:
    channels = layer()
    fanout = Fanout(channels)
    sockets = [Socket() for _ in range(5)]
    for socket_ in sockets:
        await fanout.join(GROUP, socket_)
        await fanout.live(GROUP, socket_)
    assert len(channels.groups[GROUP]) == 1

    for n in range(3):
        await channels.group_send(GROUP, {"type": "transcript.event", "n": n})
    await until(lambda: all(len(s.got) == 3 for s in sockets))
    assert all(s.got == [0, 1, 2] for s in sockets)


@pytest.mark.asyncio
async def test_messages_of_a_connecting_socket_wait_for_live_and_keep_their_order() -> None:
    channels = layer()
    fanout = Fanout(channels)
    early, late = Socket(), Socket()
    await fanout.join(GROUP, early)
    await fanout.live(GROUP, early)
    await fanout.join(GROUP, late)  # still sending its history
    await channels.group_send(GROUP, {"type": "x", "n": 1})
    await channels.group_send(GROUP, {"type": "x", "n": 2})
    await until(lambda: len(early.got) == 2)
    assert late.got == []

    await fanout.live(GROUP, late)
    assert late.got == [1, 2]
    await channels.group_send(GROUP, {"type": "x", "n": 3})
    await until(lambda: len(late.got) == 3)
    assert late.got == [1, 2, 3] and early.got == [1, 2, 3]


@pytest.mark.asyncio
async def test_a_message_arriving_while_held_ones_replay_is_delivered_after_them() -> None:
    channels = layer()
    fanout = Fanout(channels)

    class Slow(Socket):
        async def group_message(self, message: dict[str, Any]) -> None:
            await asyncio.sleep(0.05)  # a send that yields: the pump runs meanwhile
            self.got.append(message["n"])

    slow = Slow()
    await fanout.join(GROUP, slow)
    await channels.group_send(GROUP, {"type": "x", "n": 1})
    await asyncio.sleep(0.02)
    replay = asyncio.create_task(fanout.live(GROUP, slow))
    await asyncio.sleep(0.01)
    await channels.group_send(GROUP, {"type": "x", "n": 2})
    await replay
    await until(lambda: len(slow.got) == 2)
    assert slow.got == [1, 2]


@pytest.mark.asyncio
async def test_the_last_socket_leaving_leaves_the_group_and_stops_the_pump() -> None:
    channels = layer()
    fanout = Fanout(channels)
    a, b = Socket(), Socket()
    for socket_ in (a, b):
        await fanout.join(GROUP, socket_)
        await fanout.live(GROUP, socket_)
    pump = fanout.groups[GROUP].pump
    await fanout.leave(GROUP, a)
    await fanout.leave(GROUP, a)  # twice: nothing more happens
    assert len(channels.groups[GROUP]) == 1
    await channels.group_send(GROUP, {"type": "x", "n": 1})
    await until(lambda: b.got == [1])
    assert a.got == []

    await fanout.leave(GROUP, b)
    assert GROUP not in fanout.groups
    assert not channels.groups.get(GROUP)
    await asyncio.sleep(0)
    assert pump is not None and pump.done()

    # A socket coming back later gets a fresh membership.
    c = Socket()
    await fanout.join(GROUP, c)
    await fanout.live(GROUP, c)
    await channels.group_send(GROUP, {"type": "x", "n": 2})
    await until(lambda: c.got == [2])


@pytest.mark.asyncio
async def test_a_broken_socket_does_not_starve_the_others(caplog) -> None:
    channels = layer()
    fanout = Fanout(channels)
    broken, fine = Socket(fail=True), Socket()
    for socket_ in (broken, fine):
        await fanout.join(GROUP, socket_)
        await fanout.live(GROUP, socket_)
    await channels.group_send(GROUP, {"type": "transcript.event", "n": 1})
    await channels.group_send(GROUP, {"type": "transcript.event", "n": 2})
    await until(lambda: fine.got == [1, 2])
    assert "not delivered to a socket" in caplog.text


@pytest.mark.asyncio
async def test_the_pump_survives_a_failing_receive(monkeypatch) -> None:
    channels = layer()
    fanout = Fanout(channels)
    monkeypatch.setattr("transcription.live.fanout.RETRY_SECONDS", 0.01)
    real_receive = channels.receive
    failures = [ConnectionError("redis restarting")] * 2

    async def flaky_receive(channel: str) -> dict[str, Any]:
        if failures:
            raise failures.pop()
        return await real_receive(channel)

    monkeypatch.setattr(channels, "receive", flaky_receive)
    socket_ = Socket()
    await fanout.join(GROUP, socket_)
    await fanout.live(GROUP, socket_)
    await channels.group_send(GROUP, {"type": "x", "n": 1})
    await until(lambda: socket_.got == [1])
    assert not failures


@pytest.mark.asyncio
async def test_concurrent_joins_and_leaves_keep_one_membership_per_group() -> None:
    channels = layer()
    fanout = Fanout(channels)
    sockets = [Socket() for _ in range(20)]

    async def visit(socket_: Socket, stay: bool) -> None:
        await fanout.join(GROUP, socket_)
        await fanout.live(GROUP, socket_)
        if not stay:
            await fanout.leave(GROUP, socket_)

    await asyncio.gather(*(visit(s, stay=i % 2 == 0) for i, s in enumerate(sockets)))
    assert len(channels.groups[GROUP]) == 1
    assert len(fanout.groups[GROUP].members) == 10
    await channels.group_send(GROUP, {"type": "x", "n": 7})
    await until(lambda: all(s.got == [7] for s in sockets[::2]))
    assert all(s.got == [] for s in sockets[1::2])


def test_encoded_encodes_a_message_once_for_all_its_sockets() -> None:
    message = {"type": "transcript.event", "payload": {"text": "é <b>", "n": 1}}
    first = encoded(message)
    assert first == '{"text": "\\u00e9 <b>", "n": 1}'
    message["payload"]["n"] = 2  # the cached text is what every socket of this message gets
    assert encoded(message) is first


@pytest.mark.asyncio
async def test_each_event_loop_has_its_own_fanout() -> None:
    channels = layer()
    here = fanout_for(channels)
    assert fanout_for(channels) is here

    def other_loop() -> Fanout:
        async def get() -> Fanout:
            return fanout_for(channels)

        return asyncio.run(get())

    there = await asyncio.to_thread(other_loop)
    assert there is not here


@pytest.mark.asyncio
async def test_the_last_socket_leaving_from_its_own_handler_finishes_its_handler() -> None:
    """A socket told that access ended leaves the group from inside the pump's delivery, then
    still has to tell its client and close: leaving must not cancel it half-way."""
    channels = layer()
    fanout = Fanout(channels)
    finished: list[str] = []

    class Leaver(Socket):
        async def group_message(self, message: dict[str, Any]) -> None:
            await fanout.leave(GROUP, self)
            await asyncio.sleep(0.01)  # e.g. sending the reason, then closing
            finished.append(message["type"])

    leaver = Leaver()
    await fanout.join(GROUP, leaver)
    await fanout.live(GROUP, leaver)
    pump = fanout.groups[GROUP].pump
    await channels.group_send(GROUP, {"type": "access.revoked", "n": 0})
    await until(lambda: finished == ["access.revoked"])
    await until(lambda: pump is not None and pump.done())
    assert GROUP not in fanout.groups and not channels.groups.get(GROUP)
