"""Migration 0004: tasks the analysis created before proposals existed stay the space's tasks."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("sessions_app", "0003_analysis_and_tasks")]
AFTER = [("sessions_app", "0004_task_proposals")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_auto_created_tasks_become_accepted_tasks():
    old = _migrate(BEFORE)
    try:
        user = old.get_model("identity", "User").objects.create(email="legacy@example.com")
        space = old.get_model("spaces", "Space").objects.create(
            name="Legacy", slug="legacy", created_by=user
        )
        Task = old.get_model("sessions_app", "Task")
        open_task = Task.objects.create(space=space, title="Send the minutes")
        done_task = Task.objects.create(space=space, title="Book the room", done=True)

        new = _migrate(AFTER)

        Task = new.get_model("sessions_app", "Task")
        for before in (open_task, done_task):
            task = Task.objects.get(pk=before.pk)
            assert task.status == "ACCEPTED"
            assert task.proposed_title == before.title
            assert task.accepted_at == task.created_at and task.accepted_by is None
            assert task.low_confidence is False
        assert Task.objects.get(pk=done_task.pk).done is True
    finally:
        _migrate(_latest())


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()
