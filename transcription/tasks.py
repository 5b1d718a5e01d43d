import asyncio

from celery import shared_task

from transcription import runner


@shared_task(name="transcription.tasks.run_ingest", acks_late=True, ignore_result=True)
def run_ingest(run_id: int) -> None:
    """Run a transcription run for as long as it lives (``ingest`` queue, one per run)."""
    asyncio.run(runner.execute(run_id))
