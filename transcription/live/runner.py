"""Where runs execute: one small interface, two implementations.

- ``embedded``: an asyncio task inside this Daphne process (the default without Redis). The
  in-memory channel layer only works within one event loop, so the task is scheduled on the
  loop that serves ASGI requests, captured by ``LoopCaptureMiddleware``.
- ``celery``: a long-lived task on the ``ingest`` queue (the default with Redis); in a worker
  with a thread pool, the runs of the process share one event loop (``RunHost``).

Nothing else knows which one is in use: services call ``launch(run_id)``.

Graceful shutdown: SIGTERM makes every run of the process hand off (``RunPipeline.hand_off``:
drain the provider, store the finals and the meter, leave the run STARTING for the next
runner). Daphne 4 sends no ASGI lifespan events; its Twisted reactor stops on SIGTERM and waits
for "before shutdown" triggers, so ``LoopCaptureMiddleware`` adds one. A Celery worker's warm
shutdown waits for its tasks but never tells them, so ``transcription.tasks`` forwards the
signal to the pool processes running runs, which handle it in ``execute_in_worker``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings

from transcription.live.launch import launch_elsewhere, register_embedded

if TYPE_CHECKING:
    from transcription.live.pipeline import RunPipeline

logger = logging.getLogger(__name__)

_main_loop: asyncio.AbstractEventLoop | None = None
_running: set[asyncio.Task[None]] = set()
_pipelines: set[RunPipeline] = set()


class LoopCaptureMiddleware:
    """ASGI middleware that remembers the server's event loop for embedded runs."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        global _main_loop
        if _main_loop is None:
            _main_loop = asyncio.get_running_loop()
            _on_server_start(_main_loop)
        await self.app(scope, receive, send)


def _on_server_start(loop: asyncio.AbstractEventLoop) -> None:
    """Under Daphne: hand runs off when the reactor shuts down, and (embedded mode) resume the
    runs a previous process handed off."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not getattr(reactor, "running", False):
        return
    from twisted.internet import defer

    def on_shutdown() -> defer.Deferred[None]:
        return defer.Deferred.fromFuture(loop.create_task(hand_off_embedded()))

    reactor.addSystemEventTrigger("before", "shutdown", on_shutdown)
    if settings.TRANSCRIPTION_RUNNER == "embedded":
        loop.create_task(_resume_unclaimed(loop), context=contextvars.Context())


async def _resume_unclaimed(loop: asyncio.AbstractEventLoop) -> None:
    from transcription.live import store

    for run_id in await database_sync_to_async(store.runs_unclaimed)():
        logger.info("resuming run %s", run_id)
        _spawn(loop, run_id)


def hand_off_all() -> None:
    """Ask every run of this process to hand off (SIGTERM)."""
    for pipeline in list(_pipelines):
        pipeline.hand_off()


async def hand_off_embedded() -> None:
    """Hand the embedded runs off and wait (bounded) until they have stored everything."""
    hand_off_all()
    pending = [task for task in _running if not task.done()]
    if pending:
        logger.info("handing off %d runs before exit", len(pending))
        await asyncio.wait(pending, timeout=settings.TRANSCRIPTION_DRAIN_SECONDS * 2)


async def execute_in_worker(run_id: int) -> None:
    """``execute`` in a Celery pool process: SIGTERM (forwarded by the worker's warm
    shutdown, or sent to the whole process group) hands the run off instead of killing it."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, hand_off_all)
    try:
        await execute(run_id)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


class RunHost:
    """The event loop that carries every run of a Celery worker process with a thread pool.

    A prefork pool runs one run per pool process (``execute_in_worker``): each process wakes
    50 times a second for its mixer and receives its frames alone, so 100 sessions meant 100
    processes. With ``-P threads`` each task thread hands its run to this one loop and waits
    for it to end (the task lasts as long as the run, as before), so the runs of a process share
    one ticker, one vectorised mixer bank and one database batcher, as in Daphne. Start one
    such worker per core (``make up`` does): the runs spread over them.
    """

    _lock = threading.Lock()
    _instance: RunHost | None = None

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.closing = False
        self._thread = threading.Thread(target=self._serve, name="transcription-runs", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @classmethod
    def current(cls, *, create: bool = True) -> RunHost | None:
        with cls._lock:
            if cls._instance is None and create:
                cls._instance = cls()
            return cls._instance

    def execute(self, run_id: int) -> None:
        """Run ``run_id`` on the host loop; returns when it ends (raises what it raised).

        Once the worker is shutting down, a run that still reaches it (a thread pool's worker
        goes on receiving while it waits for its tasks, e.g. the relaunch of a run it just
        handed off) goes back to the queue for another worker.
        """
        if self.closing:
            logger.info("run %s: this worker is shutting down; queued for another", run_id)
            time.sleep(0.2)  # not a hot loop while this worker still receives
            launch_elsewhere(run_id)
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def start() -> None:
            # A fresh context, as for embedded runs (``_spawn``).
            task = self.loop.create_task(execute(run_id), context=contextvars.Context())
            _running.add(task)
            task.add_done_callback(_running.discard)
            task.add_done_callback(lambda t: _settle_future(t, done))

        self.loop.call_soon_threadsafe(start)
        done.result()

    def hand_off(self) -> None:
        """The worker is shutting down: every run of this host hands off (``hand_off_all``)."""
        self.closing = True
        self.loop.call_soon_threadsafe(hand_off_all)


def _settle_future(task: asyncio.Task[None], done: concurrent.futures.Future[None]) -> None:
    if task.cancelled():
        done.cancel()
    elif task.exception() is not None:
        done.set_exception(task.exception())  # type: ignore[arg-type]
    else:
        done.set_result(None)


def bind_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Use ``loop`` for embedded runs launched from threads (tests and scripts; Daphne's is
    captured by ``LoopCaptureMiddleware``)."""
    global _main_loop
    _main_loop = loop


async def execute(run_id: int) -> None:
    """Run the pipeline of ``run_id`` to its end (both runners end up here)."""
    from transcription.live.pipeline import RunPipeline
    from transcription.models import TranscriptionRun

    def load() -> TranscriptionRun | None:
        return TranscriptionRun.objects.select_related("session").filter(pk=run_id).first()

    run = await database_sync_to_async(load)()
    if run is None or run.is_finished:
        return
    pipeline = RunPipeline(run)
    _pipelines.add(pipeline)
    try:
        await pipeline.run()
    finally:
        _pipelines.discard(pipeline)


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


register_embedded(launch_embedded)
