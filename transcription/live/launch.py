"""Where a run is started: the one small interface between the run services and the runners.

With ``TRANSCRIPTION_RUNNER=celery`` a run is the Celery task ``transcription.tasks.run_ingest``
on the ``ingest`` queue (queued by name: ``rooms.jobs``); embedded, it is an asyncio task in
the Daphne process, started by the function ``transcription.live.runner`` registers here when it is
imported (``TranscriptionConfig.ready()`` imports it through the tasks module). Services call
``launch``; they never import the runner, whose pipeline calls the services back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings

from rooms.jobs import job

logger = logging.getLogger(__name__)

RUN_INGEST = "transcription.tasks.run_ingest"
_embedded: Callable[[int], None] | None = None


def register_embedded(start: Callable[[int], None]) -> None:
    """``start(run_id)`` runs a run in this process (``transcription.live.runner``)."""
    global _embedded
    _embedded = start


def launch(run_id: int) -> None:
    if settings.TRANSCRIPTION_RUNNER == "celery":
        job(RUN_INGEST).delay(run_id)
    elif _embedded is None:
        raise RuntimeError("transcription.live.runner is not loaded: no embedded runner")
    else:
        _embedded(run_id)


def launch_elsewhere(run_id: int) -> None:
    """After a hand-off: queue the run for another worker at once (Celery). Embedded runs are
    resumed by the next Daphne; either way the supervisor relaunches it if this is lost."""
    if settings.TRANSCRIPTION_RUNNER != "celery":
        return
    try:
        launch(run_id)
    except Exception:
        logger.exception("run %s: relaunch after hand-off failed; the supervisor will", run_id)
