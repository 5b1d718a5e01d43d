"""The channel layer of the embedded (single-process) mode."""

from __future__ import annotations

import time

from channels.layers import InMemoryChannelLayer


class EmbeddedChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer, with its expiry sweep run at most once a second.

    The stock layer sweeps every channel and group on every ``receive()``: with a few hundred
    sockets and runs in one process that sweep alone took ~18 % of the process's CPU
    (docs/benchmarks.md). Expiry only has to happen eventually (messages live 60 s), so a
    sweep per second is as good and costs nothing.
    """

    sweep_interval = 1.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._last_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= self.sweep_interval:
            self._last_sweep = now
            super()._clean_expired()
