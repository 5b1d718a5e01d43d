"""GC tuning of the processes that carry live audio (rooms/runtime.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.live import child_env

ROOT = Path(__file__).resolve().parents[2]
_PROBE = (
    "import gc, json, rooms.asgi; "
    "print(json.dumps({'frozen': gc.get_freeze_count(), 'thresholds': gc.get_threshold()}))"
)


def _asgi_gc_state(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=child_env(DJANGO_SETTINGS_MODULE="rooms.settings", **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_loading_the_asgi_app_freezes_the_start_up_heap():
    state = _asgi_gc_state()

    # Django, Channels and the app modules: far more than a bare interpreter's objects.
    assert state["frozen"] > 50_000
    assert state["thresholds"] == [5000, 20, 100]


def test_gc_tuning_can_be_turned_off():
    state = _asgi_gc_state(GC_TUNING="false")

    assert state["frozen"] == 0
    assert state["thresholds"] == [700, 10, 10]
