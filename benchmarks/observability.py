"""What observability costs: metric updates, a /metrics scrape, one log line.

    .venv/bin/python -m benchmarks.observability [--processes 8] [--repeat 30]

Each figure is the median / p90 / p99 / max over ``--repeat`` timed batches. Multiprocess figures
come from child processes with ``PROMETHEUS_MULTIPROC_DIR`` set (prometheus-client chooses
its value store at import), the scrape from ``--processes`` children that each wrote every
Rooms metric.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.harness import ROOT, percentiles

BATCH = 10_000


def _stats(samples: list[float]) -> dict[str, float]:
    # The minimum is the cost on an idle core; the median and tail show the shared box.
    return {"min": round(min(samples), 3)} | {
        k: round(v, 3) for k, v in percentiles(samples).items()
    }


def _time_per_call(fn, repeat: int, batch: int = BATCH, unit: float = 1e9) -> dict[str, float]:
    """Seconds per call of ``fn`` times ``unit`` (ns by default), over ``repeat`` batches."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - start) / batch * unit)
    return _stats(samples)


def worker_updates(repeat: int) -> dict[str, object]:
    """In this process (normal or multiprocess mode, from the environment)."""
    from rooms import metrics
    from transcription.usage.metering import UsageCounters

    counter = metrics.AUDIO_SECONDS
    gauge = metrics.WEBSOCKET_CONNECTIONS.labels(route="transcript")
    counters = [UsageCounters() for _ in range(100)]
    meters = [metrics.RunMeter(c) for c in counters]

    def round_of_100_runs() -> None:
        for c, meter in zip(counters, meters, strict=True):
            c.audio_seconds += 0.3
            c.partial_count += 1
            meter.publish(c)

    return {
        "counter_inc_ns": _time_per_call(lambda: counter.inc(0.02), repeat),
        "gauge_inc_dec_ns": _time_per_call(lambda: (gauge.inc(), gauge.dec()), repeat),
        "batcher_round_100_runs_us": _time_per_call(round_of_100_runs, repeat, 100, 1e6),
    }


def worker_fill() -> None:
    """A child of the scrape benchmark: touch every Rooms metric, then wait."""
    from rooms import metrics

    for route in ("transcript", "signal"):
        metrics.WEBSOCKET_CONNECTIONS.labels(route=route).inc()
    metrics.RUNS_ACTIVE.inc()
    metrics.AUDIO_SECONDS.inc(1)
    for kind in ("partial", "final"):
        metrics.TRANSCRIPT_EVENTS.labels(kind=kind).inc()
    metrics.flush_observed(3, 0.004)
    metrics.stt_reconnected("gladia")
    for kind in ("ws_close_4002", "finals_flush", "run_provider"):
        metrics.error(kind)
    from decimal import Decimal

    metrics.usage_billed(1, Decimal("0.01"))
    print("ready", flush=True)
    sys.stdin.read()


def _child(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.observability", *args],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "rooms.settings", **env},
        text=True,
        **kwargs,
    )


def scrape(directory: str, repeat: int) -> dict[str, object]:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from rooms import metrics

    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        body = metrics.render()
        samples.append((time.perf_counter() - start) * 1000)
    return {"scrape_ms": _stats(samples), "bytes": len(body)}


def log_line(repeat: int) -> dict[str, object]:
    from rooms.logging_setup import ContextFilter, JsonFormatter, RedactFilter, bind

    bind(session="weekly-sync", run=42)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactFilter())
    logger = logging.getLogger("bench.pipeline")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)

    def plain() -> None:
        logger.info("run %s: ingest on port %s, egress %s", 42, 19400, "EG_abc")

    def with_secret() -> None:
        logger.warning("connect wss://api.gladia.io/v2/live?token=%s", "abcdef0123456789")

    return {
        "log_line_us": _time_per_call(plain, repeat, 1000, 1e6),
        "log_line_with_token_us": _time_per_call(with_secret, repeat, 1000, 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--worker", choices=["updates", "fill", "scrape", "log"])
    parser.add_argument("--dir", default="")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.worker:
        import django

        django.setup()
        if args.worker == "fill":
            worker_fill()
            return
        work = {
            "updates": lambda: worker_updates(args.repeat),
            "scrape": lambda: scrape(args.dir, args.repeat),
            "log": lambda: log_line(args.repeat),
        }[args.worker]
        print(json.dumps(work()))
        return

    def run(worker: str, env: dict[str, str], *extra: str) -> dict[str, object]:
        child = _child(
            ["--worker", worker, "--repeat", str(args.repeat), *extra],
            env,
            stdout=subprocess.PIPE,
        )
        out, _ = child.communicate(timeout=600)
        return json.loads(out.strip().splitlines()[-1])

    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="rooms-prom-") as directory:
        results["normal"] = run("updates", {"PROMETHEUS_MULTIPROC_DIR": ""})
        results["multiprocess"] = run("updates", {"PROMETHEUS_MULTIPROC_DIR": directory})
    with tempfile.TemporaryDirectory(prefix="rooms-prom-") as directory:
        env = {"PROMETHEUS_MULTIPROC_DIR": directory}
        fillers = [
            _child(["--worker", "fill"], env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(args.processes)
        ]
        for filler in fillers:
            assert filler.stdout is not None and filler.stdout.readline().strip() == "ready"
        results[f"scrape_{args.processes}_processes"] = run(
            "scrape", {"PROMETHEUS_MULTIPROC_DIR": ""}, "--dir", directory
        )
        for filler in fillers:
            filler.communicate("", timeout=30)
    results["logging"] = run("log", {"PROMETHEUS_MULTIPROC_DIR": ""})
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
