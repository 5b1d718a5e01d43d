"""Celery tasks of sessions: the after-session analysis, the inactive-session sweep."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings

from sessions_app import services
from sessions_app.analysis.services import analysis_claim, analysis_execute, analysis_fail

logger = logging.getLogger(__name__)


@shared_task(name="sessions_app.tasks.analyse_session", acks_late=True, ignore_result=True)
def analyse_session(session_id: int, wait_for_transcript: bool = True) -> str:
    """Analyse an ended session. Safe to queue twice: only the claim holder works.

    ``wait_for_transcript``: give live transcription runs time to flush their last finals.

    A failed attempt puts the analysis back to PENDING and queues a retry with exponential
    backoff; the attempt count lives on the row, so it survives worker restarts. After
    ``ANALYSIS_MAX_RETRIES`` retries the analysis is FAILED with the error.
    """
    analysis = analysis_claim(session_id=session_id)
    if analysis is None:
        return "skipped"
    try:
        analysis_execute(analysis=analysis, wait_for_transcript=wait_for_transcript)
    except Exception as exc:
        final = analysis.attempts > settings.ANALYSIS_MAX_RETRIES
        analysis_fail(analysis=analysis, error=f"{type(exc).__name__}: {exc}", final=final)
        if final:
            logger.exception("analysis of session %s failed for good", session_id)
            return "failed"
        delay = settings.ANALYSIS_RETRY_BACKOFF_SECONDS * 2 ** (analysis.attempts - 1)
        logger.warning("analysis of session %s failed, retry in %ss: %s", session_id, delay, exc)
        _retry_later(session_id, delay, wait_for_transcript)
        return "retrying"
    return "done"


def _retry_later(session_id: int, delay: float, wait_for_transcript: bool) -> None:
    kwargs = {"wait_for_transcript": wait_for_transcript}
    if analyse_session.app.conf.task_always_eager:
        # Eager (no broker): there is no queue to hold the retry, so it runs here after the
        # backoff — in embedded mode this is the analysis thread, never a request.
        time.sleep(delay)
        analyse_session.apply(args=(session_id,), kwargs=kwargs)
    else:
        analyse_session.apply_async(args=(session_id,), kwargs=kwargs, countdown=delay)


@shared_task(name="sessions_app.tasks.end_inactive_sessions", ignore_result=True)
def end_inactive_sessions() -> list[str]:
    """End LIVE sessions without activity for ``SESSION_INACTIVE_MINUTES`` (Celery beat)."""
    return services.sessions_end_inactive()
