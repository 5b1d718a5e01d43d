"""Ports for RTMP ingests: one per run, from a configured range, returned when the run ends."""

from __future__ import annotations

import socket
import threading


class PortsExhausted(Exception):
    """Every port of the range is handed out or bound by someone else."""


def port_is_bindable(host: str, port: int) -> bool:
    """Whether a listener could bind ``host:port`` now (with ``SO_REUSEADDR``, as asyncio does)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class PortPool:
    """Hands out ports of ``[start, end]`` (inclusive) that are free and bindable on ``host``.

    Ports are handed out round-robin, so a port just released is the last to be reused (a
    late retry from the previous run's publisher then meets a closed port, not a new run).
    The bind check skips ports held by other processes, e.g. other Celery workers sharing
    the range; binding can still race with them, so callers bind at once and, on failure,
    release the port and ask again. Safe to share between threads and event loops.
    """

    def __init__(self, start: int, end: int, *, host: str = "127.0.0.1") -> None:
        if not 0 < start <= end < 65536:
            raise ValueError(f"bad port range {start}-{end}")
        self.start = start
        self.end = end
        self.host = host
        self._in_use: set[int] = set()
        self._next = start
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.end - self.start + 1

    @property
    def in_use(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._in_use)

    def acquire(self, preferred: int | None = None) -> int:
        """A free, bindable port, now reserved until :meth:`release`.

        ``preferred`` is taken when it is in the range and free: a run restarted after a crash
        gets its old port back, so its egress (which retries the same URL) reconnects.
        """
        with self._lock:
            if (
                preferred is not None
                and self.start <= preferred <= self.end
                and preferred not in self._in_use
                and port_is_bindable(self.host, preferred)
            ):
                self._in_use.add(preferred)
                return preferred
            for _ in range(len(self)):
                port = self._next
                self._next = self.start if port == self.end else port + 1
                if port not in self._in_use and port_is_bindable(self.host, port):
                    self._in_use.add(port)
                    return port
        raise PortsExhausted(f"no free port in {self.start}-{self.end} on {self.host}")

    def release(self, port: int) -> None:
        """Return ``port``; releasing a port twice is harmless."""
        with self._lock:
            self._in_use.discard(port)
