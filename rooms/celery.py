"""The Celery application: ``default`` queue for short tasks, ``ingest`` for long-lived runs."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rooms.settings")

app = Celery("rooms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
