"""Background jobs by name: a service queues work, a Celery task module (an edge) does it.

Task modules import services, so a service that imported its task module back would close an
import cycle. Services ask for the task by its registered name instead; each app's
``AppConfig.ready()`` imports its ``tasks`` module, so every process (Daphne, workers, tests)
has them registered.
"""

from __future__ import annotations

from celery import Task, current_app


def job(name: str) -> Task:
    """The registered Celery task called ``name`` (``KeyError`` names a missing one)."""
    try:
        return current_app.tasks[name]
    except KeyError:
        raise KeyError(
            f"no Celery task {name!r}: is its tasks module imported in ready()?"
        ) from None
