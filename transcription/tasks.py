import asyncio
import contextlib
import os
import signal
from typing import Any

from billiard.process import current_process
from celery import shared_task
from celery.signals import worker_shutting_down
from celery.worker import state as worker_state

from transcription import services
from transcription.live import egress, runner
from transcription.models import TranscriptionRun

RUN_INGEST = "transcription.tasks.run_ingest"


@shared_task(name=RUN_INGEST, acks_late=False, ignore_result=True)
def run_ingest(run_id: int) -> None:
    """Run a transcription run for as long as it lives (``ingest`` queue, one per run).

    Acknowledged when it starts, unlike other tasks: a run lasts hours, and a message held unacked
    that long is redelivered after the broker's visibility timeout, and makes the worker die
    on a Redis restart (kombu's restore of unacked messages fails while reconnecting). A
    runner lost with its worker is the supervisor's to restart (stale heartbeat)."""
    if current_process().name == "MainProcess":  # eager, or a solo pool: Celery owns SIGTERM
        asyncio.run(runner.execute(run_id))
    else:
        asyncio.run(runner.execute_in_worker(run_id))


@worker_shutting_down.connect
def hand_off_runs(sig: str, how: str, exitcode: int, **kwargs: Any) -> None:
    """Warm shutdown waits for running tasks, and a run lasts as long as its session: tell the
    pool processes running runs (SIGTERM) to hand them off, so the worker exits in seconds."""
    if how != "Warm":
        return
    for request in list(worker_state.active_requests):
        pid = request.worker_pid
        if request.task_name == RUN_INGEST and pid and pid != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


@shared_task(name="transcription.tasks.supervise_runs", ignore_result=True)
def supervise_runs() -> dict[str, list[int]]:
    """Restart runs whose runner died while their session is live; settle the rest."""
    return services.runs_supervise()


@shared_task(
    name="transcription.tasks.stop_egress",
    ignore_result=True,
    autoretry_for=(Exception,),
    retry_backoff=2,
    max_retries=5,
)
def stop_egress(run_id: int) -> None:
    """Stop a run's LiveKit egress when its runner is no longer there to do it."""
    egress_id = (
        TranscriptionRun.objects.filter(pk=run_id).values_list("egress_id", flat=True).first()
    )
    if egress_id:
        asyncio.run(egress.egress_stop(egress_id=egress_id))
