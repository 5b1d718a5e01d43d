"""Helpers for tests that run parts of Rooms in child processes (Daphne, Celery workers).

Children must see the test database (not the development one) and the same Redis; a
``transaction=True`` test commits its data so they can read it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# How production starts a Daphne (Makefile, scripts/up.sh, deploy/): on uvloop, see rooms/serve.py.
DAPHNE = [str(VENV_BIN / "python"), "-m", "rooms.serve"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_env() -> dict[str, str]:
    """Environment variables that point a child process at the current (test) database."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return {"SQLITE_PATH": str(db["NAME"]), "DATABASE_URL": ""}
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return {"DATABASE_URL": f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"}


def child_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(database_env())
    env.update(
        {
            "DEBUG": "true",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "REDIS_URL": settings.REDIS_URL,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def wait_for_port(
    port: int, *, timeout: float = 20.0, process: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def child_process(args: list[str], *, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """Run ``args`` with output to ``log``; terminate it (then kill) on exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


def reset_broker_pools() -> None:
    """Close this process's broker connections and forget the pools, so the next ``delay``
    connects afresh to the current ``broker_url`` (a pool closed by an earlier test, or one
    made for another URL, is never reused)."""
    from kombu import pools as kombu_pools

    from rooms.celery import app as celery_app

    kombu_pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def session_socket(user: object | None, path: str) -> WebsocketCommunicator:
    """A WebSocket to the real ASGI app as a same-origin page of ``user`` would open it
    (``None``: not signed in)."""
    from rooms.asgi import application

    comm = WebsocketCommunicator(
        application,
        path,
        headers=[(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")],
    )
    if user is not None:
        comm.scope["user"] = user
    return comm
