"""The Celery application: ``default`` queue for short tasks, ``ingest`` for long-lived runs."""

import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rooms.settings")

app = Celery("rooms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
@worker_ready.connect
def _tune_gc(**_: object) -> None:
    # Ingest workers run live pipelines: the same GC pauses would stall their ticks (in the
    # pool processes of a prefork pool, in the worker itself with a thread pool).
    from rooms.runtime import tune_gc_for_latency

    tune_gc_for_latency()
