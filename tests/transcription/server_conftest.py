"""Fixtures for server (egress) mode end to end: real Celery workers and beat over Redis, the fake
LiveKit (egress API + real RTMP pushes) and the fake Gladia, each where a real deployment has it.

A test module imports the fixtures it uses (``server_stack``, ``server_mode`` and ``watch``,
defined as ``server_stack_fixture``, ``server_mode_fixture`` and ``watch_fixture``) from here;
they are not in ``conftest.py`` so that no other module starts workers by accident.

Layout::

    test process (pytest)                    child processes
    ---------------------                    ---------------
    in-process consumers (Client) <--Redis-->  celery worker -Q ingest,default (the runs)
    run_start / APIs                          celery beat (supervise_runs every 0.5 s)
    "fakes" thread: FakeLiveKit, FakeGladia   ffmpeg pushers (children of the fakes' loop)

The worker and beat live for the whole module (their start-up is most of a test's cost); the
fakes are made afresh for every test on the same ports, so each test sees only its own requests,
egresses and Gladia sessions. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from celery import Celery
from channels.db import database_sync_to_async
from django.urls import reverse

from rooms.celery import app as celery_app
from sessions_app.services import session_join
from tests.fakes.gladia import FakeGladia
from tests.fakes.livekit import FIXTURE, FakeLiveKit, encode_flv
from tests.live import (
    ROOT,
    VENV_BIN,
    child_env,
    child_process,
    free_port,
    reset_broker_pools,
    wait_for_port,
)
from tests.transcription.conftest import Client
from transcription.usage.pricing import billed_minutes, total_cost

T = TypeVar("T")

LIVEKIT_KEY = "lk-server-mode-key"
LIVEKIT_SECRET = "lk-server-mode-secret-0123456789abcdef0123"
GLADIA_KEY = "gladia-server-mode-key"
EGRESS_DELAY_SECONDS = 0.03
"""How long audio the fake egress sends takes to reach the STT stream: it has no buffering of
its own, so this is our ingest's share alone, measured with ``benchmarks/egress_latency.py``
(RTMP packet out -> provider: p50 22 ms, p99 37 ms on this 2-core machine). Production adds
LiveKit's egress buffering (seconds) on top."""
HEARTBEAT_SECONDS = 0.5
STALE_SECONDS = 5.0
SUPERVISE_SECONDS = 0.5
UTTERANCE_SECONDS = 1.0
"""The fake Gladia finalises one utterance per second of audio it has received."""

__all__ = [
    "FakesThread",
    "Stack",
    "Watcher",
    "alive",
    "assert_nothing_lost_or_duplicated",
    "assert_usage",
    "extra_worker",
    "finals_after",
    "join_session",
    "no_listeners_left",
    "post_api",
    "run_row",
    "seconds_until",
    "server_mode_fixture",
    "server_stack_fixture",
    "single",
    "start_redis",
    "start_server_run",
    "start_server_stack",
    "stop_run",
    "stopped",
    "stored_finals",
    "usage_rows",
    "wait_until",
    "watch_fixture",
]


# --- the fakes' own event loop --------------------------------------------------------------


class FakesThread:
    """An event loop in a thread for the fakes, so they serve the worker whatever the test's
    loop is doing (sync ORM calls in a fixture, a blocking wait)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fakes", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """``fn()`` on the fakes' loop: a consistent read of their state, or a control."""

        async def call() -> T:
            return fn()

        return self.run(call(), timeout)

    async def acall(self, fn: Callable[[], T]) -> T:
        """``call`` from a coroutine without blocking the caller's loop."""

        async def call() -> T:
            return fn()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), self.loop))

    def close(self) -> None:
        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_the_rest(), timeout=15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


# --- processes -------------------------------------------------------------------------------


def _process_table() -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, argv) of every process we can see (Linux ``/proc``)."""
    table: dict[int, tuple[int, list[str]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        table[int(entry)] = (int(fields[1]), [a.decode(errors="replace") for a in argv if a])
    return table


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    return pid in _process_table()


def descendants(root: int) -> dict[int, tuple[int, list[str]]]:
    table = _process_table()
    found: dict[int, tuple[int, list[str]]] = {}
    frontier = {root}
    while frontier:
        children = {pid for pid, (ppid, _) in table.items() if ppid in frontier}
        children -= found.keys()
        found.update({pid: table[pid] for pid in children})
        frontier = children
    return found


def ffmpeg_listeners(root: int) -> dict[int, int]:
    """The ingest's ffmpeg decoders (``-i pipe:0``) under process ``root``: pid -> parent pid."""
    out = {}
    for pid, (ppid, argv) in descendants(root).items():
        if not argv or "ffmpeg" not in Path(argv[0]).name or "-i" not in argv:
            continue
        if argv[argv.index("-i") + 1 : argv.index("-i") + 2] == ["pipe:0"]:
            out[pid] = ppid
    return out


# --- waiting ---------------------------------------------------------------------------------


async def wait_until(
    condition: Callable[[], Any | Awaitable[Any]],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> Any:
    """Poll ``condition`` (sync or async) until it returns something truthy; fail after
    ``timeout`` seconds saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def seconds_until(
    since: float, condition: Callable[[], Any | Awaitable[Any]], *, timeout: float, what: str
) -> float:
    """``wait_until``, then how long after ``since`` (``time.monotonic()``) it held: run it as a
    task to time one event while the test waits for others."""
    await wait_until(condition, timeout=timeout, what=what)
    return time.monotonic() - since


class Watcher:
    """A transcript WebSocket client (in-process consumer, events over Redis) that keeps
    reading in the background.

    With ``speakers`` set, it reports them as ``active_speakers`` each time the run becomes
    ACTIVE (a started or restarted run has an empty speaker timeline).
    """

    def __init__(self, user: Any, slug: str, *, speakers: list[str] | None = None) -> None:
        self.client = Client(user, slug)
        self.speakers = speakers
        self.speaker_reports: list[float] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.client.messages

    async def start(self) -> None:
        # The connect checks the user and loads history and status from the database: on a
        # loaded machine that takes longer than the communicator's default second.
        connected, _ = await self.client.comm.connect(timeout=15)
        assert connected
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            message = await self.client.next(timeout=3600)
            if message.get("type") == "__closed__":
                return
            if (
                self.speakers is not None
                and message.get("type") == "transcription_status"
                and message["status"] == "ACTIVE"
            ):
                await self.report_speakers(self.speakers)

    async def report_speakers(self, speakers: list[str]) -> None:
        self.speakers = speakers
        self.speaker_reports.append(time.monotonic())
        await self.client.comm.send_to(
            text_data=json.dumps({"type": "active_speakers", "speakers": speakers})
        )

    def finals(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == "transcript" and m["is_final"]]

    def final_ids(self) -> list[str]:
        return [m["utterance_id"] for m in self.finals()]

    def statuses(self, run_id: int | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.messages
            if m.get("type") == "transcription_status" and (run_id is None or m["run_id"] == run_id)
        ]

    def has_status(self, status: str, run_id: int | None = None) -> dict[str, Any] | None:
        return next((m for m in self.statuses(run_id) if m["status"] == status), None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.comm.disconnect(timeout=10)


# --- the module's stack ----------------------------------------------------------------------


@dataclass
class Stack:
    """What the module's fixtures set up, and per test the fakes (``livekit``, ``gladia``)."""

    redis_url: str
    private_redis: bool
    livekit_port: int
    gladia_port: int
    gladia_ws_port: int
    ingest_ports: tuple[int, int]
    egress_flv: Path
    fakes: FakesThread
    worker: subprocess.Popen | None = None
    worker_name: str = ""
    beat: subprocess.Popen | None = None
    livekit: FakeLiveKit | None = None
    gladia: FakeGladia | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def worker_pid(self) -> int:
        assert self.worker is not None
        return self.worker.pid

    def listeners(self) -> dict[int, int]:
        """The worker's ffmpeg ingest listeners now: pid -> the pool process that runs it."""
        return ffmpeg_listeners(self.worker_pid)

    # Reads of the fakes, made on their loop.
    async def lk_requests(self, method: str) -> list[Any]:
        assert self.livekit is not None
        fake = self.livekit
        return await self.fakes.acall(lambda: [r for r in fake.requests if r.method == method])

    async def gladia_sessions(self) -> list[dict[str, Any]]:
        """Each Gladia session: its id, bytes received, connections, close codes and the
        prefixed utterance ids of the finals it sent (what ``GladiaSttStream`` stores)."""
        assert self.gladia is not None
        fake = self.gladia

        def read() -> list[dict[str, Any]]:
            return [
                {
                    "id": s.id,
                    "received_bytes": s.received_bytes,
                    "connections": s.connections,
                    "close_codes": list(s.close_codes),
                    "finals": [f"{s.id}:{f['id']}" for f in s.finals],
                    "ended": s.ended,
                }
                for s in fake.session_list
            ]

        return await self.fakes.acall(read)

    async def gladia_final_ids(self) -> list[str]:
        return [i for s in await self.gladia_sessions() for i in s["finals"]]

    async def egresses(self) -> list[Any]:
        assert self.livekit is not None
        fake = self.livekit
        return await self.fakes.acall(lambda: list(fake.egresses.values()))


def start_redis(tmp: Path, port: int = 0) -> tuple[subprocess.Popen, str]:
    """A private ``redis-server`` (on ``port``, or a free one) and its URL."""
    port = port or free_port()
    server = subprocess.Popen(
        [
            *("redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""),
            *("--appendonly", "no", "--dir", str(tmp)),
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port, timeout=10, process=server)
    return server, f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="module", name="server_stack")
def server_stack_fixture(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Redis, a Celery worker (queues ``ingest`` and ``default``) and ``celery beat`` with the
    supervisor, all pointed at the test database, the fakes' ports and a private ingest range."""
    with start_server_stack(tmp_path_factory.mktemp("server-mode")) as stack:
        yield stack


@contextmanager
def start_server_stack(
    tmp: Path, *, redis_url: str = "", env: dict[str, str] | None = None, name: str = "server-mode"
) -> Iterator[Stack]:
    """What ``server_stack`` sets up, for fixtures that need it changed: ``redis_url`` (one the
    caller controls; private, so the channel layer follows it) and ``env`` for the worker and
    beat (e.g. a ``DATABASE_URL`` through a proxy). Logs go to ``artifacts/<name>-*.log``."""
    from django.conf import settings

    redis_server = None
    private_redis = bool(redis_url)
    redis_url = redis_url or os.environ.get("REDIS_URL") or settings.REDIS_URL
    if not redis_url:
        redis_server, redis_url = start_redis(tmp)
        private_redis = True
    base = random.randrange(20000, 29000, 20)
    fakes = FakesThread()
    stack = Stack(
        redis_url=redis_url,
        private_redis=private_redis,
        livekit_port=free_port(),
        gladia_port=free_port(),
        gladia_ws_port=free_port(),
        ingest_ports=(base, base + 19),
        egress_flv=encode_flv(FIXTURE, tmp / "egress.flv"),
        fakes=fakes,
    )
    stack.env = {
        "REDIS_URL": redis_url,
        "LIVEKIT_URL": f"ws://127.0.0.1:{stack.livekit_port}",
        "LIVEKIT_API_URL": f"http://127.0.0.1:{stack.livekit_port}",
        "LIVEKIT_API_KEY": LIVEKIT_KEY,
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "INGEST_PORT_RANGE": f"{base}-{base + 19}",
        "INGEST_BIND_HOST": "127.0.0.1",
        "INGEST_PUBLIC_HOST": "127.0.0.1",
        "STT_PROVIDER": "gladia",
        "GLADIA_API_KEY": GLADIA_KEY,
        "GLADIA_API_URL": f"http://127.0.0.1:{stack.gladia_port}",
        "TRANSCRIPTION_RUNNER": "celery",
        "TRANSCRIPTION_MODE": "auto",
        "TRANSCRIPTION_EGRESS_DELAY_SECONDS": str(EGRESS_DELAY_SECONDS),
        "TRANSCRIPTION_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        "TRANSCRIPTION_STALE_SECONDS": str(STALE_SECONDS),
        "TRANSCRIPTION_SUPERVISE_SECONDS": str(SUPERVISE_SECONDS),
        "TRANSCRIPTION_USAGE_CHECKPOINT_SECONDS": "1.0",
        **(env or {}),
    }
    env = child_env(**stack.env)
    celery = str(VENV_BIN / "celery")
    hostname = f"{name}-{os.getpid()}@127.0.0.1"
    worker_args = _worker_args(hostname)
    beat_args = [celery, "-A", "rooms", "beat", "-l", "info", "-s", str(tmp / "beat-schedule")]
    worker_log = ROOT / "artifacts" / f"{name}-worker.log"
    try:
        with child_process(worker_args, env=env, log=worker_log) as worker:
            # The supervisor restarts a run still STARTING after the stale time, and a worker
            # still booting would leave the first run queued that long: beat waits for it.
            _wait_for_ready(worker, hostname, redis_url, worker_log)
            beat_log = worker_log.with_name(f"{name}-beat.log")
            with child_process(beat_args, env=env, log=beat_log) as beat:
                stack.worker, stack.worker_name, stack.beat = worker, hostname, beat
                yield stack
    finally:
        fakes.close()
        if redis_server is not None:
            redis_server.terminate()
            redis_server.wait(timeout=10)


def _worker_args(hostname: str) -> list[str]:
    return [
        *(str(VENV_BIN / "celery"), "-A", "rooms", "worker", "-Q", "ingest,default", "-c", "3"),
        *("-n", hostname, "--without-gossip", "--without-mingle", "--without-heartbeat"),
        *("-l", "info"),
    ]


@contextmanager
def extra_worker(stack: Stack, name: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """One more Celery worker like the stack's (queues, settings), ready when given: the
    process and its hostname. Stopped on exit if it still runs."""
    hostname = f"{name}-{os.getpid()}@127.0.0.1"
    log = ROOT / "artifacts" / f"{name}-worker.log"
    with child_process(_worker_args(hostname), env=child_env(**stack.env), log=log) as worker:
        _wait_for_ready(worker, hostname, stack.redis_url, log)
        yield worker, hostname


def _wait_for_ready(
    worker: subprocess.Popen, hostname: str, broker: str, log: Path, timeout: float = 60.0
) -> None:
    """Until the worker answers a ping over the broker (it consumes its queues by then)."""
    # Not the current app: shared tasks (``run_ingest.delay``) must stay on Rooms' app.
    probe = Celery("server-mode-probe", broker=broker, set_as_current=False)
    deadline = time.monotonic() + timeout
    try:
        while not probe.control.ping(destination=[hostname], timeout=0.5):
            assert worker.poll() is None, f"the Celery worker exited; see {log}"
            assert time.monotonic() < deadline, f"the Celery worker is not ready; see {log}"
    finally:
        probe.close()


@pytest.fixture(name="server_mode")
def server_mode_fixture(
    server_stack: Stack, settings: Any, transactional_db: None
) -> Iterator[Stack]:
    """This process configured like the worker (so ``run_start`` picks SERVER mode and the
    clients hear the worker over Redis), and fresh fakes for this test.

    Teardown stops every run still unfinished and fails the test if one does not finish: a
    run that cannot be stopped is a bug.
    """
    from transcription.models import TranscriptionRun
    from transcription.services import run_stop

    stack = server_stack
    env = stack.env
    settings.REDIS_URL = stack.redis_url
    if stack.private_redis:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "rooms.layers.PubSubChannelLayer",
                "CONFIG": {"hosts": [{"address": stack.redis_url, "max_connections": 200}]},
            }
        }
    settings.LIVEKIT_URL = env["LIVEKIT_URL"]
    settings.LIVEKIT_API_URL = env["LIVEKIT_API_URL"]
    settings.LIVEKIT_API_KEY = LIVEKIT_KEY
    settings.LIVEKIT_API_SECRET = LIVEKIT_SECRET
    settings.LIVEKIT_ENABLED = True
    settings.STT_PROVIDER = "gladia"
    settings.GLADIA_API_KEY = GLADIA_KEY
    settings.GLADIA_API_URL = env["GLADIA_API_URL"]
    settings.TRANSCRIPTION_RUNNER = "celery"
    settings.TRANSCRIPTION_MODE = "auto"
    settings.TRANSCRIPTION_EGRESS_DELAY_SECONDS = EGRESS_DELAY_SECONDS
    settings.TRANSCRIPTION_STALE_SECONDS = STALE_SECONDS
    settings.TRANSCRIPTION_HEARTBEAT_SECONDS = HEARTBEAT_SECONDS
    previous = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = stack.redis_url
    reset_broker_pools()

    async def start_fakes() -> None:
        stack.livekit = FakeLiveKit(
            api_key=LIVEKIT_KEY,
            api_secret=LIVEKIT_SECRET,
            port=stack.livekit_port,
            audio=stack.egress_flv,
        )
        stack.gladia = FakeGladia(
            api_key=GLADIA_KEY,
            port=stack.gladia_port,
            ws_port=stack.gladia_ws_port,
            utterance_seconds=UTTERANCE_SECONDS,
        )
        await stack.livekit.start()
        await stack.gladia.start()

    async def stop_fakes() -> None:
        for fake in (stack.livekit, stack.gladia):
            if fake is not None:
                await fake.stop()
        stack.livekit = stack.gladia = None

    assert stack.worker is not None and stack.worker.poll() is None, "the worker died"
    stack.fakes.run(start_fakes())
    try:
        yield stack
        unfinished = list(TranscriptionRun.objects.filter(status__in=TranscriptionRun.UNFINISHED))
        for run in unfinished:
            run_stop(run=run, reason="test teardown")
        deadline = time.monotonic() + 30
        while TranscriptionRun.objects.filter(status__in=TranscriptionRun.UNFINISHED).exists():
            assert time.monotonic() < deadline, "a run did not finish within 30 s of its stop"
            time.sleep(0.1)
        # A runner still going (it must not talk to the next test's fakes) fails the test too.
        while busy := _runs_in_progress(stack.worker_name):
            assert time.monotonic() < deadline, f"the worker still runs {busy} after 30 s"
            time.sleep(0.2)
    finally:
        stack.fakes.run(stop_fakes())
        celery_app.conf.task_always_eager, celery_app.conf.broker_url = previous
        reset_broker_pools()


def _runs_in_progress(worker: str) -> list[Any]:
    """The ``run_ingest`` tasks the worker is executing (asked over its remote control)."""
    inspect = celery_app.control.inspect(destination=[worker], timeout=2.0, limit=1)
    replies = inspect.active() or {}
    assert replies, "the worker did not answer"
    return [
        task["args"]
        for tasks in replies.values()
        for task in tasks
        if task["name"] == "transcription.tasks.run_ingest"
    ]


@pytest_asyncio.fixture(name="watch")
async def watch_fixture() -> AsyncIterator[Callable[..., Awaitable[Watcher]]]:
    """``await watch(user, slug, speakers=None)``: a connected :class:`Watcher`, closed after
    the test whatever happened (before ``server_mode`` stops the runs)."""
    made: list[Watcher] = []

    async def watch(user: Any, slug: str, *, speakers: list[str] | None = None) -> Watcher:
        watcher = Watcher(user, slug, speakers=speakers)
        await watcher.start()
        made.append(watcher)
        return watcher

    yield watch
    for watcher in made:
        await watcher.close()


# --- database reads for async tests ----------------------------------------------------------


@database_sync_to_async
def run_row(run_id: int) -> Any:
    from transcription.models import TranscriptionRun

    return TranscriptionRun.objects.get(pk=run_id)


@database_sync_to_async
def stored_finals(session_id: int) -> dict[str, dict[str, Any]]:
    """utterance id -> the stored segment's fields, for one session."""
    from transcription.models import TranscriptSegment

    rows = TranscriptSegment.objects.filter(session_id=session_id).values(
        "utterance_id", "run_id", "speaker_identity", "speaker_name", "participant_id", "text"
    )
    return {row["utterance_id"]: row for row in rows}


@database_sync_to_async
def usage_rows(run_id: int) -> list[Any]:
    from transcription.models import TranscriptionUsage

    return list(TranscriptionUsage.objects.filter(run_id=run_id))


# --- steps and checks of a run, for async tests -----------------------------------------------


async def join_session(session: Any, *users: Any) -> None:
    for user in users:
        await database_sync_to_async(session_join)(session=session, user=user)


async def post_api(client: Any, name: str, slug: str) -> Any:
    return await database_sync_to_async(client.post)(reverse(name, kwargs={"slug": slug}))


async def start_server_run(client: Any, slug: str) -> int:
    response = await post_api(client, "api-transcription-start", slug)
    assert response.status_code == 201, response.content
    assert response.json()["mode"] == "SERVER"
    return response.json()["run_id"]


async def stop_run(client: Any, slug: str) -> None:
    response = await post_api(client, "api-transcription-stop", slug)
    assert response.status_code == 200, response.content


async def finals_after(watcher: Watcher, count: int, *, timeout: float, what: str) -> None:
    await wait_until(lambda: len(watcher.finals()) >= count, timeout=timeout, what=what)


async def stopped(watcher: Watcher, run_id: int, status: str = "STOPPED") -> dict[str, Any]:
    return await wait_until(
        lambda: watcher.has_status(status, run_id), timeout=30, what=f"run {run_id} {status}"
    )


async def no_listeners_left(stack: Stack) -> None:
    await wait_until(
        lambda: not stack.listeners(), timeout=10, what="the ingest's ffmpeg to be gone"
    )


def single(ids: list[str]) -> set[str]:
    assert len(ids) == len(set(ids)), f"a final was delivered twice: {ids}"
    return set(ids)


async def assert_nothing_lost_or_duplicated(
    stack: Stack, watcher: Watcher, session_id: int
) -> None:
    """Every final Gladia sent is stored once and was shown once to the client."""
    sent = single(await stack.gladia_final_ids())
    seen = single(watcher.final_ids())
    stored = set(await stored_finals(session_id))
    assert sent, "Gladia sent no finals"
    assert stored == sent, f"lost {sent - stored}, unexpected {stored - sent}"
    assert seen == sent, f"clients missed {sent - seen}, got unknown {seen - sent}"


async def assert_usage(run_id: int) -> Any:
    rows = await usage_rows(run_id)
    assert len(rows) == 1
    usage = rows[0]
    assert usage.finalized
    assert usage.duration_seconds > 0
    assert usage.billed_minutes == billed_minutes(usage.duration_seconds) >= 1
    assert usage.total_cost == total_cost(usage.billed_minutes, usage.cost_per_minute) > 0
    return usage
