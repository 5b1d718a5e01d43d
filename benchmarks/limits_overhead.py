"""What the limits cost: the checks a transcription start makes, the budget refresh of running
runs, and one API throttle decision, over ``--rows`` usage rows in PostgreSQL and real Redis.

Generates the same data as ``benchmarks.usage_stats`` (rows spread over a year, every space
with a month limit so the month sums are really computed), then times, each many times:

- ``run_start_check``: kill switch, the starter's row lock, active runs, the space's month sum;
- ``runs_budget`` for 50 running runs of different spaces (once per usage checkpoint and
  process);
- ``ScopedPostThrottle.allow_request`` against Redis (two round-trips: ADD and INCR).

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python -m benchmarks.limits_overhead

Needs an empty PostgreSQL database (``scripts/services.sh start DIR`` gives one).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace

from benchmarks.harness import machine, setup_django


def timed(label: str, calls: list[Callable[[], object]], warmup: int = 10) -> None:
    timings = []
    for index, call in enumerate(calls):
        started = time.perf_counter()
        call()
        if index >= warmup:
            timings.append((time.perf_counter() - started) * 1000)
    ordered = sorted(timings)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    print(
        f"{label:<46} n={len(ordered):<5} median {statistics.median(ordered):6.2f} ms  "
        f"p95 {pick(0.95):6.2f} ms  p99 {pick(0.99):6.2f} ms  max {ordered[-1]:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--spaces", type=int, default=200)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    setup_django({})

    from django.conf import settings
    from django.db import transaction

    from benchmarks.usage_stats import generate
    from rooms.throttles import ScopedPostThrottle
    from spaces.models import SpaceLimits
    from transcription.models import TranscriptionRun
    from transcription.usage import limits

    assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), "set DATABASE_URL"
    assert settings.REDIS_URL, "set REDIS_URL"
    print(machine())
    started = time.perf_counter()
    data = generate(args.rows, args.spaces)
    print(f"generated {args.rows:,} usage rows in {time.perf_counter() - started:.0f} s")
    SpaceLimits.objects.bulk_create(
        SpaceLimits(space=space, max_month_minutes=10**9) for space in data["spaces"]
    )
    rng = random.Random(7)
    sessions = data["sessions"]

    def start_check() -> None:
        session = rng.choice(sessions)
        with transaction.atomic():
            limits.starter_lock(by=session.created_by)
            limits.run_start_check(session=session, by=session.created_by)

    timed("run_start_check (lock, runs, month sum)", [start_check] * args.calls)

    per_space = {}
    for run_id, space_id in TranscriptionRun.objects.values_list("pk", "session__space_id")[
        : args.spaces * 20
    ]:
        per_space.setdefault(space_id, run_id)
    run_ids = list(per_space.values())[:50]
    assert len(run_ids) == 50
    timed(
        "runs_budget, 50 runs in 50 spaces",
        [lambda: limits.runs_budget(run_ids=run_ids)] * (args.calls // 5),
    )

    throttle = ScopedPostThrottle()
    view = SimpleNamespace(throttle_scope="create")
    users = data["users"]

    def throttle_once() -> None:
        user = rng.choice(users)
        request = SimpleNamespace(method="POST", user=user, META={"REMOTE_ADDR": "127.0.0.1"})
        throttle.allow_request(request, view)

    timed("throttle decision (Redis ADD + INCR)", [throttle_once] * (args.calls * 4))


if __name__ == "__main__":
    main()
