"""Shared plumbing for benchmarks: a throwaway database, a real Daphne, stats."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def setup_django(extra_env: dict[str, str]) -> dict[str, str]:
    """Point this process (and the children started later) at a fresh database; migrate it."""
    # Production settings (DEBUG off: no query log, no debug cursor), plain HTTP on loopback.
    env = {
        "DEBUG": "false",
        "SECRET_KEY": "benchmark-only-secret-key-" + "x7Qp2" * 8,
        "TRANSCRIPTION_JWT_SECRET": "benchmark-only-jwt-secret-" + "k3Vz" * 4,
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # One benchmark user drives dozens of runs: the product's per-user limits and rate
        # limits would refuse them; benchmarks measure the pipeline, not the limits.
        "TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER": "0",
        "RATE_LIMIT_PER_MINUTE": "1000000",
        "RATE_LIMIT_CREATE_PER_MINUTE": "1000000",
        **extra_env,
    }
    if not os.environ.get("DATABASE_URL"):
        workdir = tempfile.mkdtemp(prefix="rooms-bench-")
        env["SQLITE_PATH"] = str(Path(workdir) / "bench.sqlite3")
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rooms.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def checkout(ref: str) -> Path:
    """The code of git ``ref`` in a temporary directory, with THIS tree's ``benchmarks/``: a
    baseline server to run beside the current one in one invocation (same load, same fakes)."""
    target = Path(tempfile.mkdtemp(prefix=f"rooms-baseline-{ref[:12]}-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    shutil.rmtree(target / "benchmarks", ignore_errors=True)
    shutil.copytree(ROOT / "benchmarks", target / "benchmarks")
    return target


def start_daphne(env: dict[str, str], port: int, log: Path, root: Path = ROOT) -> subprocess.Popen:
    """A Daphne serving the code under ``root`` (this tree, or a ``checkout``)."""
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    args = ["-b", "127.0.0.1", "-p", str(port), "rooms.asgi:application"]
    process = subprocess.Popen(
        [VENV_BIN / "python", "-m", "rooms.serve", *args],
        cwd=root,
        env=full_env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited; see {log}")
        time.sleep(0.1)
    raise TimeoutError("daphne did not start")


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of a process (Linux /proc); with ``children``, also those of
    its children that have ended and been waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    own = int(fields[11]) + int(fields[12])
    return (own + (int(fields[13]) + int(fields[14]) if children else 0)) / ticks


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "n": len(ordered),
        "median": statistics.median(ordered),
        "p90": pick(0.90),
        "p99": pick(0.99),
        "max": ordered[-1],
    }


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}"


def tune_load_process(loop: str = "uvloop") -> None:
    """A load generator process: on ``loop`` (uvloop, as the served processes, or asyncio's
    own), with the cyclic garbage collector off.

    A load process keeps hundreds of thousands of samples, and a full collection walking them
    paused it for tens of milliseconds, which it then measured as the server's latency. Its runs
    are bounded and its garbage is not cyclic.
    """
    os.environ["ROOMS_EVENT_LOOP"] = loop
    from rooms.runtime import use_uvloop

    use_uvloop()
    gc.disable()
