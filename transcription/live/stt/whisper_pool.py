"""One Whisper model per process, shared by all the offline streams of that process.

:func:`get_pool` returns the process's :class:`DecoderPool`: ``workers`` decoder processes
(:mod:`transcription.live.stt.whisper_worker`, one model each, started on first use and kept
for the life of the process) fed from one queue of jobs. Child processes rather than
threads because decoding holds the GIL for parts of each call, and loading the model
(~0.5 s) or decoding in this process would stall its event loop; plain pipes rather than
``multiprocessing`` because Celery's prefork workers are daemonic.

The pool is driven by threads, not by an event loop, so it outlives the loops that use it
(each Celery task runs its own ``asyncio.run``; each test its own loop): one thread per
worker takes the most urgent job (lowest ``priority``, then oldest), writes it to its
decoder, waits for the answer and hands it to the job's ``on_done`` (called in that
thread). A decoder that dies or hangs past ``job_timeout`` is restarted and its job tried
once more; a job that fails twice, or a decoder that cannot start, answers
``{"error": ...}``.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import itertools
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_PROJECT_ROOT = Path(__file__).resolve().parents[3]
JOB_ATTEMPTS = 2


class PoolError(Exception):
    """The decoder could not be started (the message says why)."""


@dataclass(eq=False)
class Job:
    """One utterance to decode. ``pcm`` is PCM16LE 16 kHz mono; ``options`` go to the
    decoder as they are (``language``, ``languages``, ``min_window``, ``words``)."""

    pcm: bytes
    options: dict[str, Any]
    priority: int
    on_done: Callable[[Job, dict[str, Any]], None]
    id: int = 0
    seq: int = 0
    attempts: int = 0
    started: bool = False
    cancelled: bool = False
    queued_at: float = field(default_factory=time.monotonic)


class _Worker:
    """One decoder process and the thread that feeds it."""

    def __init__(self, pool: DecoderPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.process: subprocess.Popen[bytes] | None = None
        self.busy = False
        self.restarts = 0
        self.stderr_tail: collections.deque[bytes] = collections.deque(maxlen=40)
        self._buffer = b""
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"whisper-pool-{index}", daemon=True)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def ensure_process(self) -> None:
        """Start the decoder if it is not running; raise :class:`PoolError` if it cannot."""
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                return
            if self.process is not None:
                self.restarts += 1
                self.pool.restarts += 1
            self._spawn()

    def _spawn(self) -> None:
        self._buffer = b""
        self.stderr_tail.clear()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        # Belt and braces: the model directory is checked, and nothing may reach a hub.
        env["HF_HUB_OFFLINE"] = "1"
        env["OMP_NUM_THREADS"] = str(self.pool.cpu_threads)
        config = {
            "model_dir": self.pool.model_dir,
            "compute_type": self.pool.compute_type,
            "cpu_threads": self.pool.cpu_threads,
        }
        try:
            process = subprocess.Popen(
                [*self.pool.argv, json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise PoolError(f"the decoder could not be spawned: {exc}") from exc
        self.process = process
        threading.Thread(
            target=self._collect_stderr, args=(process,), name="whisper-stderr", daemon=True
        ).start()
        ready = self._read_line(self.pool.start_timeout)
        message: dict[str, Any] = {}
        with contextlib.suppress(ValueError, TypeError):
            message = json.loads(ready) if ready else {}
        if not message.get("ready"):
            self.kill()
            raise PoolError(f"the decoder did not start: {self.stderr_text()}")
        self.pool.multilingual = bool(message.get("multilingual"))
        self.pool.load_seconds = float(message.get("load_seconds", 0.0))

    def _collect_stderr(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.stderr_tail.append(line)

    def stderr_text(self) -> str:
        # The stderr thread may still be reading what a dying decoder wrote.
        time.sleep(0.05)
        text = b"".join(self.stderr_tail).decode(errors="replace").strip()
        return text[-2000:] or "(no output)"

    def _read_line(self, timeout: float) -> bytes | None:
        """One line from the decoder, or None on end of file or after ``timeout``."""
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def kill(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def _run(self) -> None:
        while True:
            job = self.pool._next_job(self)
            if job is None:
                return
            try:
                answer = self._decode(job)
            except Exception as exc:  # never let the thread die with a job unanswered
                logger.exception("Offline STT: decoding a job failed")
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            self.pool._job_done(self)
            try:
                job.on_done(job, answer)
            except Exception:
                logger.exception("Offline STT: a job callback failed")

    def _decode(self, job: Job) -> dict[str, Any]:
        while True:
            job.attempts += 1
            try:
                self.ensure_process()
            except PoolError as exc:
                logger.error("Offline STT decoder %s: %s", self.index, exc)
                return {"error": str(exc)}
            assert self.process is not None and self.process.stdin is not None
            header = dict(job.options, id=job.id, bytes=len(job.pcm))
            try:
                self.process.stdin.write(json.dumps(header).encode() + b"\n")
                self.process.stdin.write(job.pcm)
                self.process.stdin.flush()
                line = self._read_line(self.pool.job_timeout)
            except (BrokenPipeError, ConnectionError, OSError, ValueError):
                line = None
            answer: dict[str, Any] | None = None
            if line is not None:
                with contextlib.suppress(ValueError):
                    answer = json.loads(line)
            if answer is not None and answer.get("id") == job.id:
                return answer
            # Dead, hung or talking nonsense: start afresh.
            self.kill()
            logger.error(
                "Offline STT decoder %s failed on a job (attempt %s): %s",
                self.index,
                job.attempts,
                self.stderr_text(),
            )
            if job.attempts >= JOB_ATTEMPTS:
                return {"error": "the decoder failed on this audio twice"}


class DecoderPool:
    """The decoder processes of one process and their job queue (see the module docstring)."""

    def __init__(
        self,
        *,
        model_dir: str,
        workers: int = 1,
        cpu_threads: int = 1,
        compute_type: str = "int8",
        start_timeout: float = 60.0,
        job_timeout: float = 120.0,
        argv: list[str] | None = None,
    ) -> None:
        if workers < 1 or cpu_threads < 1:
            raise ValueError("workers and cpu_threads must be at least 1")
        self.model_dir = model_dir
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type
        self.start_timeout = start_timeout
        self.job_timeout = job_timeout
        self.argv = argv or [sys.executable, "-m", "transcription.live.stt.whisper_worker"]
        self.pid = os.getpid()
        self.multilingual = False
        self.load_seconds = 0.0
        self.restarts = 0
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._queue: list[Job] = []
        self._cond = threading.Condition()
        self._closed = False
        self._start_lock = threading.Lock()
        self._workers = [_Worker(self, index) for index in range(workers)]
        self._threads_started = False

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self._workers if w.pid is not None]

    def start(self) -> None:
        """Start the decoders (blocking: ~0.5 s per model) unless they run already.

        Raises :class:`PoolError` if one cannot start."""
        with self._start_lock:
            if self._closed:
                raise PoolError("the decoder pool is closed")
            for worker in self._workers:
                if not worker.busy:  # a busy worker's own thread restarts its decoder
                    worker.ensure_process()
            if not self._threads_started:
                self._threads_started = True
                for worker in self._workers:
                    worker.thread.start()

    @property
    def idle(self) -> bool:
        """True when nothing waits and a decoder is free: a cheap job would not delay
        any other."""
        with self._cond:
            return not self._queue and any(not w.busy for w in self._workers)

    @property
    def queue_empty(self) -> bool:
        """True when no job waits for a decoder (one may be running)."""
        with self._cond:
            return not self._queue

    def submit(self, job: Job) -> Job:
        with self._cond:
            if self._closed:
                raise PoolError("the decoder pool is closed")
            job.id = next(self._ids)
            job.seq = next(self._seq)
            self._queue.append(job)
            self._cond.notify()
        return job

    def cancel(self, job: Job) -> bool:
        """Withdraw a job that no decoder has taken yet; False if it is (or was) running."""
        with self._cond:
            if job.started or job not in self._queue:
                return False
            self._queue.remove(job)
            job.cancelled = True
            return True

    def reprioritise(self, job: Job, priority: int) -> None:
        with self._cond:
            job.priority = priority

    def close(self) -> None:
        """Stop the decoders; queued jobs are dropped unanswered (process exit, tests)."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        for worker in self._workers:
            if worker.process is not None and worker.process.stdin is not None:
                with contextlib.suppress(OSError, ValueError):
                    worker.process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                if worker.process is not None:
                    worker.process.wait(timeout=5)
            worker.kill()

    def _next_job(self, worker: _Worker) -> Job | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            job = min(self._queue, key=lambda j: (j.priority, j.seq))
            self._queue.remove(job)
            job.started = True
            worker.busy = True
            return job

    def _job_done(self, worker: _Worker) -> None:
        with self._cond:
            worker.busy = False


_pools: dict[tuple[Any, ...], DecoderPool] = {}
_pools_lock = threading.Lock()


def get_pool(
    *, model_dir: str, workers: int = 1, cpu_threads: int = 1, compute_type: str = "int8"
) -> DecoderPool:
    """The process's pool for this model and shape, created on first use.

    A forked child (Celery prefork) does not inherit its parent's decoders: their threads
    did not survive the fork, so it starts its own."""
    key = (model_dir, workers, cpu_threads, compute_type)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None or pool.pid != os.getpid() or pool._closed:
            pool = DecoderPool(
                model_dir=model_dir,
                workers=workers,
                cpu_threads=cpu_threads,
                compute_type=compute_type,
            )
            _pools[key] = pool
        return pool


@atexit.register
def _close_pools() -> None:
    for pool in list(_pools.values()):
        if pool.pid == os.getpid():
            pool.close()
