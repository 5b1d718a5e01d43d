import asyncio
import contextlib
import os
import signal
import threading
from typing import Any

from billiard.process import current_process
from celery import Task, shared_task
from celery.signals import worker_shutting_down
from celery.worker import state as worker_state

from transcription import services
from transcription.live import egress, runner
from transcription.models import TranscriptionRun

RUN_INGEST = "transcription.tasks.run_ingest"


@shared_task(name=RUN_INGEST, bind=True, acks_late=False, ignore_result=True)
def run_ingest(self: Task, run_id: int) -> None:
    """Run a transcription run for as long as it lives (``ingest`` queue, one per run).

    Acknowledged when it starts, unlike other tasks: a run lasts hours, and a message held unacked
    that long is redelivered after the broker's visibility timeout, while the run still goes on.
    A runner lost with its worker is the supervisor's to restart (stale heartbeat)."""
    if self.request.is_eager:
        asyncio.run(runner.execute(run_id))
    elif threading.current_thread() is not threading.main_thread():
        # A thread pool (``-P threads``): every run of the process on one shared loop.
        host = runner.RunHost.current()
        assert host is not None
        host.execute(run_id)
    elif current_process().name == "MainProcess":  # a solo pool: Celery owns SIGTERM
        asyncio.run(runner.execute(run_id))
    else:
        asyncio.run(runner.execute_in_worker(run_id))


@worker_shutting_down.connect
def hand_off_runs(sig: str, how: str, exitcode: int, **kwargs: Any) -> None:
    """Warm shutdown waits for running tasks, and a run lasts as long as its session: tell the
    pool processes running runs (SIGTERM) to hand them off, so the worker exits in seconds."""
    if how != "Warm":
        return
    host = runner.RunHost.current(create=False)
    if host is not None:
        # A thread pool: the runs are on this process's host loop.
        host.hand_off()
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
