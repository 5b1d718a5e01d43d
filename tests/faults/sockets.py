"""Real Daphne processes and transcript WebSocket clients that behave like the page's
(``static/js/transcript.js``): on a lost connection they reconnect with backoff — here to the
next Daphne, as a balancer would send them — and merge the ``history`` they get on connect
with the live finals, by utterance id."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.live import DAPHNE, ROOT, child_env, child_process, free_port, wait_for_port


@dataclass
class Daphne:
    port: int
    process: subprocess.Popen

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@contextmanager
def daphne(name: str, env: dict[str, str]) -> Iterator[Daphne]:
    """A Daphne serving ``rooms.asgi`` with ``env`` (on top of the test database's), listening
    when given; log in ``artifacts/<name>.log``."""
    port = free_port()
    args = [*DAPHNE, "-b", "127.0.0.1", "-p", str(port), "rooms.asgi:application"]
    log = ROOT / "artifacts" / f"{name}.log"
    with child_process(args, env=child_env(**env), log=log) as process:
        wait_for_port(port, timeout=60, process=process)
        yield Daphne(port, process)


@dataclass
class ResyncingClient:
    """One transcript page: ``finals`` is what it shows (history merged with live finals)."""

    path: str
    servers: list[str]
    origin: str | None = None
    """The page's origin; by default the origin of the server connected to (``ws://h:p`` is
    ``http://h:p``), as if each Daphne were the balancer the page came from."""
    backoff: float = 0.25
    """The first reconnect delay (the page's is 0.5-1 s; doubles up to 4 s here)."""
    finals: dict[str, dict[str, Any]] = field(default_factory=dict)
    live_ids: list[str] = field(default_factory=list)
    """Utterance ids of live finals in arrival order, per connection (repeats across
    connections are the resync at work; within one connection they would be a bug)."""
    connections: list[str] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    history_added: list[int] = field(default_factory=list)
    """Per connection: how many finals its ``history`` added that this page had not shown."""
    _task: asyncio.Task[None] | None = None
    _socket: ClientConnection | None = None
    _stop: bool = False

    def start(self, first: int = 0) -> None:
        self._task = asyncio.create_task(self._run(first))

    async def _run(self, index: int) -> None:
        delay = self.backoff
        while not self._stop:
            server = self.servers[index % len(self.servers)]
            try:
                origin = self.origin or "http" + server.removeprefix("ws")
                async with connect(server + self.path, origin=origin, open_timeout=10) as ws:
                    self._socket = ws
                    self.connections.append(server)
                    delay = self.backoff
                    seen_here: set[str] = set()
                    async for raw in ws:
                        self._on_message(json.loads(raw), seen_here)
            except (OSError, ConnectionClosed, TimeoutError):
                pass
            self._socket = None
            if self._stop:
                return
            index += 1
            # The page's backoff: half fixed, half random, capped.
            await asyncio.sleep(delay / 2 + random.uniform(0, delay / 2))
            delay = min(delay * 2, 4.0)

    def _on_message(self, message: dict[str, Any], seen_here: set[str]) -> None:
        kind = message.get("type")
        if kind == "history":
            new = [s for s in message["segments"] if s["utterance_id"] not in self.finals]
            self.history_added.append(len(new))
            for segment in message["segments"]:
                self.finals[segment["utterance_id"]] = segment
        elif kind == "transcript" and message["is_final"]:
            assert message["utterance_id"] not in seen_here, "a final came twice on one socket"
            seen_here.add(message["utterance_id"])
            self.live_ids.append(message["utterance_id"])
            self.finals[message["utterance_id"]] = message
        elif kind == "transcription_status":
            self.statuses.append(message)

    def has_status(self, status: str, run_id: int) -> bool:
        return any(s["status"] == status and s["run_id"] == run_id for s in self.statuses)

    async def close(self) -> None:
        self._stop = True
        if self._socket is not None:
            await self._socket.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
