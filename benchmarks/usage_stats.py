"""Usage/cost stats endpoints over 1,000,000 ``TranscriptionUsage`` rows in PostgreSQL.

Generates users, spaces (10 members each, the first an owner), sessions and participants with
the ORM, then 1,000,000 runs and their usage rows with one ``generate_series`` INSERT each,
spread over a year. Times the three stats endpoints through DRF's test client (the whole
request: middleware, auth, selectors, serializers) and prints median/p95/p99, then the plan of
every query one request of each endpoint makes (``EXPLAIN (ANALYZE, BUFFERS)``).

    DATABASE_URL=postgres://... .venv/bin/python -m benchmarks.usage_stats --rows 1000000

Needs an empty PostgreSQL database (``scripts/services.sh start DIR`` gives one).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import timedelta
from typing import Any

from benchmarks.harness import machine, setup_django

USERS_PER_SPACE = 10
SESSIONS_PER_SPACE = 100
PARTICIPANTS_PER_SESSION = 3


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def generate(rows: int, spaces: int) -> dict[str, list[Any]]:
    from django.db import connection
    from django.utils import timezone

    from identity.models import User
    from sessions_app.models import Participant, VideoSession
    from spaces.models import Space, SpaceMember

    now = timezone.now()
    users = User.objects.bulk_create(
        User(email=f"bench{i}@example.com", display_name=f"User {i}", password="!")
        for i in range(spaces * USERS_PER_SPACE)
    )
    space_rows = Space.objects.bulk_create(
        Space(slug=f"bench-{i}", name=f"Space {i}", created_by=users[i * USERS_PER_SPACE])
        for i in range(spaces)
    )
    SpaceMember.objects.bulk_create(
        SpaceMember(
            space=space_rows[i // USERS_PER_SPACE],
            user=user,
            role=SpaceMember.Role.OWNER if i % USERS_PER_SPACE == 0 else SpaceMember.Role.MEMBER,
        )
        for i, user in enumerate(users)
    )
    sessions = VideoSession.objects.bulk_create(
        VideoSession(
            title=f"Session {i}",
            space=space_rows[i // SESSIONS_PER_SPACE],
            created_by=users[(i // SESSIONS_PER_SPACE) * USERS_PER_SPACE],
            status=VideoSession.Status.ENDED,
            peer_to_peer=i % 5 == 0,
            created_at=now - timedelta(days=i % 365),
            ended_at=now - timedelta(days=i % 365) + timedelta(hours=1),
        )
        for i in range(spaces * SESSIONS_PER_SPACE)
    )
    Participant.objects.bulk_create(
        Participant(
            session=session,
            identity=f"p{k}",
            name=f"P {k}",
            joined_at=session.created_at,
            left_at=None if k == 0 else session.created_at + timedelta(minutes=10 * k + 3),
        )
        for session in sessions
        for k in range(PARTICIPANTS_PER_SESSION)
    )
    ids = {
        "user0": users[0].pk,
        "session0": sessions[0].pk,
        "sessions": len(sessions),
    }
    assert users[-1].pk - users[0].pk == len(users) - 1, "user ids must be contiguous"
    assert sessions[-1].pk - sessions[0].pk == len(sessions) - 1, "session ids must be contiguous"
    with connection.cursor() as cursor:
        # Row g: session g % S (space-major), started by one of that space's 10 members.
        cursor.execute(
            """
            INSERT INTO transcription_transcriptionrun
                (session_id, mode, provider, languages, status, started_by_id, control_channel,
                 ingest_key, egress_id, egress_status, created_at, started_at, ended_at,
                 attempts, error_code, error)
            SELECT %(s0)s + g %% %(ns)s, 'BROWSER',
                   CASE WHEN g %% 3 = 0 THEN 'gladia' ELSE 'local' END, '[]'::jsonb, 'STOPPED',
                   %(u0)s + ((g %% %(ns)s) / %(sps)s) * %(ups)s + (g / %(ns)s) %% %(ups)s,
                   '', md5(g::text), '', '', t, t, t + interval '10 minutes', 1, '', ''
            FROM generate_series(0, %(n)s - 1) AS g,
                 -- a well-spread pseudo-random moment in the last 365 days, per row
                 LATERAL (SELECT now() - ((g::bigint * 2654435761) %% 31536000)
                                         * interval '1 second' AS t) AS r
            """,
            {
                "s0": ids["session0"],
                "ns": ids["sessions"],
                "u0": ids["user0"],
                "sps": SESSIONS_PER_SPACE,
                "ups": USERS_PER_SPACE,
                "n": rows,
            },
        )
        cursor.execute(
            """
            INSERT INTO transcription_transcriptionusage
                (session_id, run_id, user_id, provider, started_at, ended_at, duration_seconds,
                 billed_minutes, audio_chunks, audio_bytes, partial_count, final_count,
                 error_count, reconnect_count, cost_per_minute, total_cost, finalized,
                 created_at, updated_at)
            SELECT r.session_id, r.id, r.started_by_id, r.provider, r.started_at, r.ended_at,
                   d.seconds, ceil(d.seconds / 60), 0, 0, 0, 0, 0, 0, 0.0100,
                   ceil(d.seconds / 60) * 0.0100, true, r.created_at, r.created_at
            FROM transcription_transcriptionrun r,
                 LATERAL (SELECT 5 + (r.id * 7919 % 3600)::float AS seconds) AS d
            """
        )
        cursor.execute("VACUUM ANALYZE")
    return {
        "users": users,
        "owners": [users[i * USERS_PER_SPACE] for i in range(spaces)],
        "spaces": space_rows,
        "sessions": sessions,
    }


def existing() -> dict[str, list[Any]]:
    """The users, spaces and sessions of an earlier run (``--reuse``)."""
    from identity.models import User
    from sessions_app.models import VideoSession
    from spaces.models import Space, SpaceMember

    spaces = list(Space.objects.order_by("pk"))
    owners = {
        m.space_id: m.user
        for m in SpaceMember.objects.filter(role=SpaceMember.Role.OWNER).select_related("user")
    }
    return {
        "users": list(User.objects.order_by("pk")),
        "owners": [owners[s.pk] for s in spaces],
        "spaces": spaces,
        "sessions": list(VideoSession.objects.order_by("pk")),
    }


def bench(label: str, requests: list[tuple[Any, str, dict]], warmup: int = 10) -> dict:
    from rest_framework.test import APIClient

    clients: dict[int, APIClient] = {}
    timings: list[float] = []
    cpu: list[float] = []
    for index, (user, path, params) in enumerate(requests):
        client = clients.get(user.pk)
        if client is None:
            client = clients[user.pk] = APIClient()
            client.force_authenticate(user)
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(path, params)
        elapsed = (time.perf_counter() - started) * 1000
        cpu_elapsed = (time.process_time() - cpu_started) * 1000
        assert response.status_code == 200, (path, params, response.status_code, response.content)
        if index >= warmup:
            timings.append(elapsed)
            cpu.append(cpu_elapsed)
    result = {
        "label": label,
        "n": len(timings),
        "median": statistics.median(timings),
        "p95": p(timings, 0.95),
        "p99": p(timings, 0.99),
        "max": max(timings),
        "cpu_median": statistics.median(cpu),
        "cpu_p95": p(cpu, 0.95),
    }
    print(
        f"{label:<44} n={result['n']:<4} median {result['median']:6.1f} ms  "
        f"p95 {result['p95']:6.1f} ms  p99 {result['p99']:6.1f} ms  max {result['max']:6.1f} ms"
        f"  | Django CPU median {result['cpu_median']:5.1f} ms p95 {result['cpu_p95']:5.1f} ms"
    )
    return result


def bench_admin(spaces: list[Any], month: dict[str, str], n: int) -> None:
    """The usage changelist with its totals, chart and top sessions (a staff member's view)."""
    from django.conf import settings
    from django.test import Client, override_settings

    from identity.models import User

    staff, _ = User.objects.get_or_create(
        email="staff@example.com", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(staff)
    url = "/admin/transcription/transcriptionusage/"
    rng = random.Random(7)
    cases = [
        (
            "admin usage: one space, one month",
            lambda: {
                "session__space__id__exact": rng.choice(spaces).pk,
                "created_from": month["from"],
                "created_to": month["to"],
            },
        ),
        (
            "admin usage: all spaces, one month",
            lambda: {"created_from": month["from"], "created_to": month["to"]},
        ),
        ("admin usage: unfiltered (1M rows)", dict),
    ]
    # DEBUG is off and nothing ran collectstatic: plain static URLs for the admin's CSS.
    plain_static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    with override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain_static}):
        for label, params in cases:
            time_admin_page(client, url, label, params, n)


def time_admin_page(client: Any, url: str, label: str, params: Any, n: int) -> None:
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(url, params())
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    print(
        f"{label:<44} n={n:<4} median {statistics.median(timings):6.1f} ms  "
        f"p95 {p(timings, 0.95):6.1f} ms  max {max(timings):6.1f} ms"
    )


def explain(label: str, user: Any, path: str, params: dict) -> float:
    """The plan of every SELECT one request makes (index choices and execution times)."""
    from django.db import connection
    from rest_framework.test import APIClient

    captured: list[tuple[str, Any]] = []

    def capture(execute, sql, sql_params, many, context):
        if sql.lstrip().upper().startswith("SELECT") and "django_session" not in sql:
            captured.append((sql, sql_params))
        return execute(sql, sql_params, many, context)

    client = APIClient()
    client.force_authenticate(user)
    with connection.execute_wrapper(capture):
        client.get(path, params)
    print(f"\n## {label}: {len(captured)} queries")
    total = 0.0
    with connection.cursor() as cursor:
        for sql, sql_params in captured:
            if "transcription" not in sql and "participant" not in sql:
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, sql_params)
            plan = [row[0] for row in cursor.fetchall()]
            total += float(plan[-1].split(":")[1].split()[0])
            scans = [
                line.strip()
                for line in plan
                if "Scan" in line or "Execution Time" in line or "Sort Method" in line
            ]
            print("  -", sql[:110].replace("\n", " "), "...")
            for line in scans:
                print("      ", line[:150])
    print(f"  SQL execution, all queries of the request: {total:.2f} ms")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--spaces", type=int, default=200)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--reuse", action="store_true", help="time against the rows an earlier run generated"
    )
    args = parser.parse_args()

    # Persistent connections (DB_CONN_MAX_AGE), as a production deployment would run them;
    # with the default 0 every request also pays for a new PostgreSQL connection.
    conn_max_age = os.environ.get("DB_CONN_MAX_AGE", "60")
    setup_django(
        {"ALLOWED_HOSTS": "testserver,127.0.0.1,localhost", "DB_CONN_MAX_AGE": conn_max_age}
    )
    from django.db import connection

    from transcription.models import TranscriptionUsage

    assert connection.vendor == "postgresql", "set DATABASE_URL to an empty PostgreSQL database"
    started = time.perf_counter()
    if args.reuse:
        data = existing()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    else:
        data = generate(args.rows, args.spaces)
    print(
        f"{TranscriptionUsage.objects.count():,} usage rows, "
        f"{len(data['users'])} users, {len(data['spaces'])} spaces, "
        f"{len(data['sessions'])} sessions (ready in {time.perf_counter() - started:.1f} s)"
    )
    print(f"machine: {machine()}; DB_CONN_MAX_AGE={conn_max_age}")
    from django.conf import settings

    settings.LIVEKIT_ENABLED = True  # count the video estimate (the heavier path)

    rng = random.Random(5)
    n = args.requests
    month = {"from": "2026-10-01", "to": "2026-10-31"}

    def any_user():
        return rng.choice(data["users"])

    def owner_and_space():
        index = rng.randrange(len(data["spaces"]))
        return data["owners"][index], data["spaces"][index]

    def session_with_member():
        session = rng.choice(data["sessions"])
        index = data["spaces"].index(next(s for s in data["spaces"] if s.pk == session.space_id))
        return data["owners"][index], session

    baseline = bench(
        "GET /api/me (baseline: no usage query)",
        [(any_user(), "/api/me", {}) for _ in range(n)],
    )
    results = [
        bench(
            "GET /api/transcription/stats (all time)",
            [(any_user(), "/api/transcription/stats", {}) for _ in range(n)],
        ),
        bench(
            "GET /api/transcription/stats (one month)",
            [(any_user(), "/api/transcription/stats", month) for _ in range(n)],
        ),
        bench(
            "GET /api/sessions/<slug>/transcription/usage",
            [
                (owner, f"/api/sessions/{s.slug}/transcription/usage", {})
                for owner, s in (session_with_member() for _ in range(n))
            ],
        ),
        bench(
            "GET /api/spaces/<slug>/usage (all time)",
            [
                (owner, f"/api/spaces/{space.slug}/usage", {})
                for owner, space in (owner_and_space() for _ in range(n))
            ],
        ),
        bench(
            "GET /api/spaces/<slug>/usage (one month)",
            [
                (owner, f"/api/spaces/{space.slug}/usage", month)
                for owner, space in (owner_and_space() for _ in range(n))
            ],
        ),
    ]
    print(
        f"baseline request (auth, throttles, middleware): median {baseline['median']:.1f} ms, "
        f"Django CPU {baseline['cpu_median']:.1f} ms"
    )
    worst = max(r["p95"] for r in results)
    print(f"\nworst p95: {worst:.1f} ms (target <= 50 ms): {'met' if worst <= 50 else 'NOT met'}")

    bench_admin(data["spaces"], month, 20)

    owner, space = data["owners"][0], data["spaces"][0]
    explain("user stats, all time", data["users"][1], "/api/transcription/stats", {})
    explain("user stats, one month", data["users"][1], "/api/transcription/stats", month)
    session = data["sessions"][1]
    explain("session usage", owner, f"/api/sessions/{session.slug}/transcription/usage", {})
    explain("space usage, all time", owner, f"/api/spaces/{space.slug}/usage", {})
    explain("space usage, one month", owner, f"/api/spaces/{space.slug}/usage", month)


if __name__ == "__main__":
    main()
