"""Embedded mode's stand-in for Celery beat: the inactive-session sweep inside Daphne.

Without Redis there is no beat, so ``make run`` would never end an abandoned session. This
ASGI-only middleware starts one asyncio task in the server's event loop on the first request;
the task runs ``sessions_end_inactive`` every ``SESSION_INACTIVE_SWEEP_SECONDS`` for as long as
the process serves. It is installed only when Redis is not configured (see settings).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from channels.db import database_sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from sessions_app.services import sessions_end_inactive

logger = logging.getLogger(__name__)

_sweeps: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}


async def sweep_forever() -> None:
    while True:
        await asyncio.sleep(settings.SESSION_INACTIVE_SWEEP_SECONDS)
        try:
            await database_sync_to_async(sessions_end_inactive)()
        except Exception:
            logger.exception("ending inactive sessions failed; the next sweep tries again")


def sweep_start() -> asyncio.Task[None] | None:
    """The running loop's sweep task, started on the first call (idempotent per loop).

    Only the server's own loop (Daphne's, in the main thread) gets one: a request served
    through ``async_to_sync`` runs in a throwaway loop that would drop the task.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    loop = asyncio.get_running_loop()
    task = _sweeps.get(loop)
    if task is None or task.done():
        task = _sweeps[loop] = loop.create_task(sweep_forever())
    return task


class InactiveSweepMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        sweep_start()
        return await self.get_response(request)
