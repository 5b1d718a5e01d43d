"""Process-level tuning for the long-lived processes that carry live audio.

Why: CPython's cyclic garbage collector stops the whole process while it scans. A Daphne
process has ~1 M objects from Django, DRF, numpy and the app modules that live for ever; every
full (generation 2) collection walked all of them — 40-115 ms pauses every ~5 s at 50 live
runs, each stalling every run's mixer tick and every WebSocket (benchmarks/pipeline_latency.py,
docs/benchmarks.md). Freezing what exists after start-up moves it to a permanent generation
that collections skip, and larger thresholds make the young collections rarer; reference
counting still frees almost everything at once, so memory does not grow.
"""

from __future__ import annotations

import asyncio
import gc
import os

from django.conf import settings

# Young objects allocated before a collection (default 700); collections of generation 0
# before one of 1 (default 10); of 1 before one of 2 (default 10).
_THRESHOLDS = (5000, 20, 100)


def tune_gc_for_latency() -> bool:
    """Freeze the start-up heap and raise the GC thresholds (``GC_TUNING``); True when done.

    Call once, when start-up imports are done (the end of ``rooms/asgi.py``, a Celery worker
    process after init).
    """
    if not settings.GC_TUNING:
        return False
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_THRESHOLDS)
    return True


def use_uvloop() -> bool:
    """Make new event loops uvloop loops, unless ``ROOMS_EVENT_LOOP=asyncio``; True when done.

    Call before the process creates its loop (``python -m rooms.serve`` for Daphne, the load
    generators of the benchmarks). Reads the environment, not Django's settings, because
    Daphne creates its loop before Django is set up. Celery workers keep asyncio's loop: their
    fault tests (Redis restart) are the proof that stands for them.
    """
    if os.environ.get("ROOMS_EVENT_LOOP", "uvloop").strip().lower() == "asyncio":
        return False
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
