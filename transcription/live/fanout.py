"""The transcript sockets of one process share ONE member of their session's Channels group.

When every socket joined the group itself, each event reached each socket through the channel
layer: a queue put, a task wake-up, a ``receive`` task and the consumer's dispatch, per socket.
Those were a third of a Daphne's time in the fan-out benchmark (docs/benchmarks.md). Here the
layer hands a group message over once per process, and a pump passes it to the process's
sockets of that session in a loop: the message dict is the same object for all of them, so a
consumer can encode it once (``encoded``).

Order and completeness are as before: a socket joins (buffered) before it reads its history,
and ``live`` replays what arrived meanwhile after the history, in the group's order. Group
messages themselves are unchanged, so anything else may still join the group directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# The pause after the channel layer failed a receive (e.g. Redis restarting) before the pump
# tries again; the layer resubscribes its groups when it reconnects.
RETRY_SECONDS = 0.5


class Listener(Protocol):
    async def group_message(self, message: dict[str, Any]) -> None: ...


def encoded(message: dict[str, Any], key: str = "payload") -> str:
    """``message[key]`` as JSON, encoded once for all the listeners of a process."""
    cache = f"_{key}_json"
    text = message.get(cache)
    if text is None:
        text = message[cache] = json.dumps(message[key])
    return text


def encoded_item(message: dict[str, Any], key: str, index: int) -> str:
    """``message[key][index]`` as JSON, encoded once for all the listeners of a process."""
    cache = f"_{key}_{index}_json"
    text = message.get(cache)
    if text is None:
        text = message[cache] = json.dumps(message[key][index])
    return text


class _Group:
    def __init__(self, name: str, channel: str) -> None:
        self.name = name
        self.channel = channel
        # listener -> messages held back while it connects (None once it is live)
        self.members: dict[Listener, list[dict[str, Any]] | None] = {}
        self.pump: asyncio.Task[None] | None = None
        self.closed = False


class Fanout:
    """The group memberships of one event loop's sockets on one channel layer."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.groups: dict[str, _Group] = {}
        # Membership changes are serialised, so a group is never discarded while a socket
        # joins it, nor joined twice.
        self.lock = asyncio.Lock()

    async def join(self, group: str, listener: Listener) -> None:
        """Start receiving ``group``'s messages; they are held until ``live``."""
        async with self.lock:
            entry = self.groups.get(group)
            if entry is None:
                channel = await self.layer.new_channel("fanout.")
                await self.layer.group_add(group, channel)
                entry = self.groups[group] = _Group(group, channel)
                entry.pump = asyncio.create_task(self._pump(entry), name=f"fanout {group}")
            entry.members[listener] = []

    async def live(self, group: str, listener: Listener) -> None:
        """Deliver what was held back, in order, then deliver as messages arrive."""
        entry = self.groups.get(group)
        held = entry.members.get(listener) if entry is not None else None
        while held:
            await self._deliver(listener, held.pop(0))
        # Nothing awaited between the last check and this: no message can slip past.
        if entry is not None and entry.members.get(listener) is held:
            entry.members[listener] = None

    async def leave(self, group: str, listener: Listener) -> None:
        async with self.lock:
            entry = self.groups.get(group)
            if entry is None or entry.members.pop(listener, False) is False:
                return
            if entry.members:
                return
            del self.groups[group]
            entry.closed = True
            # The last listener may be leaving from its own handler, inside the pump (a socket
            # told its access ended): cancelling the pump then would cancel that handler at
            # its next await, before it told its client anything. The pump ends by itself
            # once this delivery is done.
            if entry.pump is not None and entry.pump is not asyncio.current_task():
                entry.pump.cancel()
            await self.layer.group_discard(group, entry.channel)

    async def _pump(self, entry: _Group) -> None:
        while not entry.closed:
            try:
                message = await self.layer.receive(entry.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("fan-out of %s: channel layer receive failed", entry.name)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for listener, held in list(entry.members.items()):
                if held is not None:
                    held.append(message)
                else:
                    await self._deliver(listener, message)

    @staticmethod
    async def _deliver(listener: Listener, message: dict[str, Any]) -> None:
        try:
            await listener.group_message(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            # One broken socket must not starve the others of the session.
            logger.exception("fan-out: %s not delivered to a socket", message.get("type"))


_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout] = weakref.WeakKeyDictionary()


def fanout_for(layer: Any) -> Fanout:
    """The running loop's ``Fanout`` (one per loop: channel layers are bound to their loop)."""
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None or fanout.layer is not layer:
        fanout = _fanouts[loop] = Fanout(layer)
    return fanout
