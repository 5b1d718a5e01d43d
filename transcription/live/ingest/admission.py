"""Which unauthenticated connections a run's gate keeps while they handshake.

Anyone who can reach a run's port can open connections and say nothing. A cap that refuses
newcomers once full would let a few silent sockets lock the real egress out, so a newcomer is
never refused for want of room: room is made for it by dropping a waiting connection instead,
the least advanced first (:class:`Progress`), from the address holding the most of them, oldest
first. A peer that floods from one address thus only displaces its own connections once that
address holds ``per_address``, and the egress, which completes its handshake within a round
trip, outranks every silent socket. Whoever is dropped may reconnect; short handshake timeouts
bound how long anyone is held.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from transcription.live.ingest.gate import Progress


@dataclass(eq=False)
class Pending:
    """One connection waiting to pass the gate."""

    address: str
    writer: asyncio.StreamWriter
    since: float = field(default_factory=time.monotonic)
    progress: Progress = Progress.ACCEPTED
    dropped: bool = False
    """Set when it was dropped to make room for a newcomer."""

    def advance(self, progress: Progress) -> None:
        self.progress = max(self.progress, progress)


class Admission:
    """The unauthenticated connections of one gate: at most ``total``, ``per_address`` each.

    Used from one event loop. :meth:`admit` every accepted connection, :meth:`release` it when
    it passes, fails or is dropped.
    """

    def __init__(self, *, total: int, per_address: int) -> None:
        if not 1 <= per_address <= total:
            raise ValueError("need 1 <= per_address <= total")
        self.total = total
        self.per_address = per_address
        self._pending: list[Pending] = []

    def __len__(self) -> int:
        return len(self._pending)

    def admit(self, address: str, writer: asyncio.StreamWriter) -> tuple[Pending, Pending | None]:
        """Take a new connection in; returns it and the connection dropped to make room, if any.

        The dropped one is marked and forgotten here; the caller closes it.
        """
        victim = self._victim(address)
        if victim is not None:
            victim.dropped = True
            self.release(victim)
        pending = Pending(address, writer)
        self._pending.append(pending)
        return pending, victim

    def release(self, pending: Pending) -> None:
        """Forget ``pending``; harmless when already forgotten."""
        if pending in self._pending:
            self._pending.remove(pending)

    def _victim(self, address: str) -> Pending | None:
        per_address = Counter(p.address for p in self._pending)
        if per_address[address] >= self.per_address:
            crowded = {address}
        elif len(self._pending) >= self.total:
            most = max(per_address.values())
            crowded = {a for a, count in per_address.items() if count == most}
        else:
            return None
        candidates = [p for p in self._pending if p.address in crowded]
        return min(candidates, key=lambda p: (p.progress, p.since))
