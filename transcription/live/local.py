"""Runs of this process, by control channel: frames to a run in the same process skip the layer.

A run listens on its channel-layer channel (``RunPipeline.channel``) for audio frames, speaker
reports and control messages, wherever they come from. When the socket that sends them is served
by the same event loop as the run (embedded mode, the default of ``make run``), going through
the channel layer only costs: a queue put, a task wake-up and the layer's receive per frame,
about 12 % of the loop at 50 browser-mode runs (docs/benchmarks.md). Here the run registers a
handler for its channel, and a sender on the same loop calls it directly; anything else (another
process, another loop, a thread) still goes through the layer, and the run handles both the same
way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any]], None]

_handlers: dict[str, tuple[asyncio.AbstractEventLoop, Handler]] = {}


def register(channel: str, handler: Handler) -> None:
    """Messages for ``channel`` sent on the running loop go to ``handler`` (synchronously)."""
    _handlers[channel] = (asyncio.get_running_loop(), handler)


def unregister(channel: str) -> None:
    _handlers.pop(channel, None)


def deliver(channel: str, message: dict[str, Any]) -> bool:
    """Hand ``message`` to the run listening on ``channel`` when it runs on this loop; False
    when it does not (the caller sends it through the channel layer)."""
    entry = _handlers.get(channel)
    if entry is None:
        return False
    loop, handler = entry
    try:
        if asyncio.get_running_loop() is not loop:
            return False
    except RuntimeError:
        return False
    handler(message)
    return True
