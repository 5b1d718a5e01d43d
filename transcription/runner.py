"""Where runs execute: one small interface, two implementations.

- ``embedded``: an asyncio task inside this Daphne process (the default without Redis). The
  in-memory channel layer only works within one event loop, so the task is scheduled on the
  loop that serves ASGI requests, captured by ``LoopCaptureMiddleware``.
- ``celery``: a long-lived task on the ``ingest`` queue (the default with Redis).

Nothing else knows which one is in use: services call ``launch(run_id)``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

logger = logging.getLogger(__name__)

_main_loop: asyncio.AbstractEventLoop | None = None
_running: set[asyncio.Task[None]] = set()


class LoopCaptureMiddleware:
    """ASGI middleware that remembers the server's event loop for embedded runs."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        global _main_loop
        if _main_loop is None:
            _main_loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


def bind_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Use ``loop`` for embedded runs launched from threads (tests and scripts; Daphne's is
    captured by ``LoopCaptureMiddleware``)."""
    global _main_loop
    _main_loop = loop


async def execute(run_id: int) -> None:
    """Run the pipeline of ``run_id`` to its end (both runners end up here)."""
    from transcription.models import TranscriptionRun
    from transcription.pipeline import RunPipeline

    def load() -> TranscriptionRun | None:
        return TranscriptionRun.objects.select_related("session").filter(pk=run_id).first()

    run = await database_sync_to_async(load)()
    if run is None or run.is_finished:
        return
    await RunPipeline(run).run()


def _log_failure(task: asyncio.Task[None]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("embedded transcription run crashed", exc_info=task.exception())


def _spawn(loop: asyncio.AbstractEventLoop, run_id: int) -> None:
    # A fresh context: the caller's may carry asgiref's "inside sync_to_async" marker, which
    # would make every database call of the run fail with "would deadlock".
    task = loop.create_task(execute(run_id), context=contextvars.Context())
    _running.add(task)
    task.add_done_callback(_log_failure)


def launch_embedded(run_id: int) -> None:
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if current is not None:
        _spawn(current, run_id)
    elif _main_loop is not None and not _main_loop.is_closed():
        _main_loop.call_soon_threadsafe(_spawn, _main_loop, run_id, context=contextvars.Context())
    else:
        raise RuntimeError(
            "No server event loop to run transcription in: serve Rooms with Daphne, "
            "or set TRANSCRIPTION_RUNNER=celery with REDIS_URL."
        )


def launch(run_id: int) -> None:
    if settings.TRANSCRIPTION_RUNNER == "celery":
        from transcription.tasks import run_ingest

        run_ingest.delay(run_id)
    else:
        launch_embedded(run_id)
