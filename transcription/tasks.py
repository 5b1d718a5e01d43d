import asyncio

from celery import shared_task

from transcription import egress, runner, services
from transcription.models import TranscriptionRun


@shared_task(name="transcription.tasks.run_ingest", acks_late=True, ignore_result=True)
def run_ingest(run_id: int) -> None:
    """Run a transcription run for as long as it lives (``ingest`` queue, one per run)."""
    asyncio.run(runner.execute(run_id))


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
