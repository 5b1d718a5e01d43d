"""Server time of the finished-session page and the transcript exports for a 2-hour transcript.

An ENDED session gets a generated 2-hour transcript (default 2,500 finals, ~20,000 words, four
speakers, ~1,000 speaker turns); the page is requested through Django's test client (the whole
request: middleware, selectors, queries, template) and timed: the first page, a later page, a
search, a jump-to-time redirect, and the SRT and JSON downloads.

    DATABASE_URL=postgres://... .venv/bin/python -m benchmarks.finished_page --repeat 30
(PostgreSQL when DATABASE_URL is set, else a throwaway SQLite file with the icontains search.)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from benchmarks.harness import machine, percentiles, setup_django

_VOCABULARY = (
    "the we should look at this next quarter team customer release plan numbers review "
    "and I think that is a good point but maybe later because our roadmap needs more time "
    "for testing design hiring support meeting notes follow up deadline friday schedule"
)
WORDS = _VOCABULARY.split()
SPEAKERS = [
    ("id-ada", "Ada Lovelace"),
    ("id-bo", "Bo Diddley"),
    ("id-cy", "Cy Twombly"),
    ("id-di", "Di Rigg"),
]


def build(finals: int, seconds: float, seed: int):
    from identity.models import User
    from sessions_app.models import Participant, VideoSession
    from spaces.services import space_create
    from transcription.models import TranscriptionRun, TranscriptSegment

    rng = random.Random(seed)
    owner = User.objects.create_user(f"bench-{seed}@example.com", display_name="Bench Owner")
    space = space_create(owner=owner, name="Benchmark space")
    session = VideoSession.objects.create(
        title="Two-hour review", space=space, created_by=owner, status=VideoSession.Status.ENDED
    )
    for identity, name in SPEAKERS:
        Participant.objects.create(session=session, identity=identity, name=name)
    run = TranscriptionRun.objects.create(
        session=session, mode="BROWSER", provider="local", status="STOPPED"
    )
    step = seconds / finals
    speaker = SPEAKERS[0]
    segments = []
    words_total = 0
    for i in range(finals):
        if rng.random() < 0.4:
            speaker = rng.choice([s for s in SPEAKERS if s != speaker])
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
        if rng.random() < 0.02:
            words.insert(rng.randrange(len(words)), "budget")
        words_total += len(words)
        segments.append(
            TranscriptSegment(
                session=session,
                run=run,
                speaker_identity=speaker[0],
                speaker_name=speaker[1],
                utterance_id=f"u{i}",
                text=" ".join(words).capitalize() + ".",
                language="en",
                start_offset=i * step,
                end_offset=i * step + step * 0.9,
            )
        )
    TranscriptSegment.objects.bulk_create(segments, batch_size=1000)
    return owner, session, words_total


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def timed(client, url: str, params: dict, repeat: int, expect: int) -> tuple[list, list]:
    """Wall-clock and this process's CPU milliseconds per request (the CPU time leaves out the
    waits for the database and for the other processes sharing the cores)."""
    for _ in range(3):  # warm-up: template loading, connection, caches
        client.get(url, params)
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url, params)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == expect, response.status_code
    return wall, cpu


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--finals", type=int, default=2500)
    parser.add_argument("--seconds", type=float, default=7200)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    setup_django({})
    from django.test.utils import override_settings

    # Production settings want a collectstatic manifest for static URLs; plain URLs here.
    override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    ).enable()
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from transcription.archive.transcript import TURNS_PER_PAGE, transcript_index

    owner, session, words = build(args.finals, args.seconds, args.seed)
    index = transcript_index(session=session)
    client = Client(HTTP_HOST="localhost")
    client.force_login(owner)
    page = reverse("sessions:detail", kwargs={"slug": session.slug})
    export = f"/api/sessions/{session.slug}/transcript."
    later = min(3, index.page_count)
    cases = [
        ("first page", page, {}, 200),
        (f"page {later}", page, {"page": later}, 200),
        ("search 'budget'", page, {"q": "budget"}, 200),
        ("search 'review meeting'", page, {"q": "review meeting", "page": 2}, 200),
        ("jump to 1:30:00", page, {"t": "1:30:00"}, 302),
        ("export .srt", export + "srt", {}, 200),
        ("export .json", export + "json", {}, 200),
    ]
    print(
        f"{machine()}; database {connection.vendor}; {args.finals} finals, {words} words, "
        f"{args.seconds / 3600:.1f} h, {len(index.spans)} turns, "
        f"{index.page_count} pages of {TURNS_PER_PAGE} turns; {args.repeat} requests each"
    )
    print(
        f"{'request':<26} {'median ms':>9} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'CPU med':>7} {'CPU p95':>7} queries"
    )
    for name, url, params, expect in cases:
        queries = QueryCounter()
        with connection.execute_wrapper(queries):
            client.get(url, params)
        wall, cpu = timed(client, url, params, args.repeat, expect)
        stats = percentiles(wall)
        print(
            f"{name:<26} {stats['median']:>9.1f} {p95(wall):>7.1f} {stats['p99']:>7.1f} "
            f"{stats['max']:>7.1f} {statistics.median(cpu):>7.1f} {p95(cpu):>7.1f} {queries.count}"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
