"""Pipeline overhead: audio frame in -> `transcript` event at a WebSocket client.

A real Daphne process runs N browser-mode runs (embedded runner) with an instant STT stream
(benchmarks/instant_stt.py), so what is measured is Rooms' own path: WebSocket in, consumer,
channel layer, mixer tick and jitter buffer, pipeline, attribution, group broadcast, WebSocket
out. Each session has a speaker (sending 40 ms frames in real time, one marked frame in five)
and a listener that timestamps the finals.

The load generator is split over ``--procs`` processes (each owning a slice of the sessions),
so that one client event loop falling behind does not masquerade as server latency; each
process also reports how late its speakers sent their frames ("sender lateness").

    .venv/bin/python -m benchmarks.pipeline_latency --sessions 50 --seconds 20 --procs 2

Issue 20 additions:

- ``--baseline REF --repeat 5``: five rounds, each the code of git ``REF`` (a ``checkout`` with
  this tree's benchmarks) and then the current code, on the same database and load: the old
  code is the baseline in the same invocation.
- ``--speakers K``: K speakers per session (K microphones mixed; the first carries the markers,
  the others send silence, so markers never overlap in the mix).
- ``--url http://127.0.0.1:8000``: the distributed topology of ``make up`` (nginx, two
  Daphnes, runs in Celery ingest workers) instead of a Daphne of its own; start ``make up`` with
  the environment this prints (``--print-env``). CPU is then that of every server process.

Each run reports the server's CPU seconds per audio second transcribed (sessions x seconds),
the mixers' gaps and trimmed audio over the run (``rooms_mixer_*`` from the server's
``/metrics``: a marker is only ever lost to a trim; ``--metrics-url`` with ``--url``),
``lost_first``: how many of the lost markers were a speaker's first (the start of a run), and
``silent_sessions``: sessions whose listener heard none of their markers (a session lost whole,
not frames trimmed; the full result lists their slugs, and the other lost markers with when they
were sent). Every speaker starts once its own socket has said the run is active, as the page
does.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import random
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

from benchmarks.harness import (
    ROOT,
    checkout,
    cpu_seconds,
    free_port,
    machine,
    percentiles,
    rss_mb,
    setup_django,
    start_daphne,
    tune_load_process,
)
from benchmarks.wsclient import Socket, connect

FRAME_SECONDS = 0.04


def prepare(sessions: int, speakers: int = 1) -> tuple[str, list[tuple[str, list[str], str]]]:
    from rest_framework.authtoken.models import Token

    from identity.models import User
    from sessions_app.models import VideoSession
    from sessions_app.tokens import transcription_token_create
    from spaces.models import SpaceMember
    from spaces.services import space_create

    tag = time.strftime("%H%M%S")
    people = [
        User.objects.create_user(
            email=f"speaker{k}-{tag}@bench.local", password="x", display_name=f"Speaker {k}"
        )
        for k in range(speakers)
    ]
    listener = User.objects.create_user(
        email=f"listener-{tag}@bench.local", password="x", display_name="Listener"
    )
    space = space_create(owner=people[0], name="Bench")
    for user in [*people[1:], listener]:
        SpaceMember.objects.create(space=space, user=user)
    token = Token.objects.create(user=people[0]).key
    out = []
    for i in range(sessions):
        session = VideoSession.objects.create(space=space, created_by=people[0], title=f"bench {i}")
        out.append(
            (
                session.slug,
                [
                    transcription_token_create(session_slug=session.slug, identity=u.identity)
                    for u in people
                ],
                transcription_token_create(session_slug=session.slug, identity=listener.identity),
            )
        )
    return token, out


async def run(
    url: str,
    api_token: str,
    sessions: list[tuple[str, list[str], str]],
    seconds: float,
    barrier: multiprocessing.synchronize.Barrier | None = None,
) -> dict:
    from benchmarks.instant_stt import marked_frame, silent_frame

    base = "ws" + url.removeprefix("http")
    origin = url
    quiet = silent_frame()
    sent: dict[tuple[str, int], float] = {}
    latencies: list[float] = []
    to_provider: list[float] = []
    from_provider: list[float] = []
    received: set[tuple[str, int]] = set()
    lateness: list[float] = []
    duplicates = 0
    stop_at = 0.0
    phase = random.Random(",".join(s[0] for s in sessions))

    def says_active(message: dict) -> bool:
        return message["type"] == "transcription_status" and message["status"] == "ACTIVE"

    def listen(slug: str, ws: Socket, active: asyncio.Event) -> None:
        def on_text(raw: str) -> None:
            nonlocal duplicates
            now = time.perf_counter()
            message = json.loads(raw)
            if says_active(message):
                active.set()
            elif message["type"] == "transcript" and message["is_final"]:
                seq, detected = message["text"].split()
                key = (slug, int(seq))
                if key in received:
                    duplicates += 1
                    return
                received.add(key)
                if key in sent:
                    latencies.append((now - sent[key]) * 1000)
                    to_provider.append((float(detected) - sent[key]) * 1000)
                    from_provider.append((now - float(detected)) * 1000)

        ws.on_text = on_text

    def until_active(ws: Socket) -> asyncio.Event:
        active = asyncio.Event()

        def on_text(raw: str) -> None:
            message = json.loads(raw)
            if says_active(message):
                active.set()

        ws.on_text = on_text
        return active

    async def speak(slug: str, ws: Socket, marks: bool) -> None:
        seq = 0
        # Each speaker starts at its own point of a frame: where a frame lands relative to
        # the server's 20 ms tick moves its latency by up to a tick, and speakers started in
        # lockstep would all share one (lucky or unlucky) phase.
        next_at = time.perf_counter() + phase.uniform(0.0, FRAME_SECONDS)
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        i = 0
        while next_at < stop_at:
            lateness.append((time.perf_counter() - next_at) * 1000)
            i += 1
            if marks and i % 5 == 0:
                seq += 1
                sent[(slug, seq)] = time.perf_counter()
                ws.send_bytes(marked_frame(seq))
            else:
                ws.send_bytes(quiet)
            next_at += FRAME_SECONDS
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    speakers, listeners, actives = [], [], []
    voices = []  # (slug, socket, carries the markers)
    for slug, speaker_tokens, listener_token in sessions:
        path = f"/ws/sessions/{slug}/transcript/?token="
        for k, speaker_token in enumerate(speaker_tokens):
            ws = await connect(base + path + speaker_token, origin)
            # A speaker starts once its own socket says the run is active, as the page does:
            # a frame its consumer receives before it knows the run is not mixed, and the
            # listener's status says nothing about a socket on the other Daphne.
            actives.append(until_active(ws))
            speakers.append(ws)
            voices.append((slug, ws, k == 0))
        listener = await connect(base + path + listener_token, origin)
        listeners.append(listener)
        active = asyncio.Event()
        actives.append(active)
        listen(slug, listener, active)
    headers = {"Authorization": f"Token {api_token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        for slug, _, _ in sessions:
            (await http.post(f"/api/sessions/{slug}/transcription/start")).raise_for_status()
        await asyncio.wait_for(asyncio.gather(*(a.wait() for a in actives)), timeout=120)
        for ws in speakers:
            # Speakers also receive every event: dropped unread from now on, so the server
            # never blocks on them.
            ws.on_text = None
            ws.discard = True
        if barrier is not None:
            # Every generator process starts speaking together.
            await asyncio.to_thread(barrier.wait)
        spoke_from = time.perf_counter()
        stop_at = spoke_from + seconds
        await asyncio.gather(*(speak(slug, ws, marks) for slug, ws, marks in voices))
        spoke_until = time.perf_counter()
        await asyncio.sleep(2.0)
        for slug, _, _ in sessions:
            (await http.post(f"/api/sessions/{slug}/transcription/stop")).raise_for_status()
    await asyncio.gather(*(ws.close() for ws in speakers + listeners))
    return {
        "latency_ms": latencies,
        "frame_to_provider_ms": to_provider,
        "provider_to_client_ms": from_provider,
        "sender_lateness_ms": lateness,
        "sent": len(sent),
        "lost": len(set(sent) - received),
        # A speaker's first marker, lost: what the start of a run costs, not its steady state.
        "lost_first": sum(1 for _, seq in set(sent) - received if seq == 1),
        # Sessions whose listener heard none of their markers: a whole session lost, not a trim.
        "silent_sessions": sorted({slug for slug, _ in sent} - {slug for slug, _ in received}),
        # The others, each with when it was sent (seconds into the speaking): when they cluster,
        # a stall of the box; one session's alone, its run.
        "lost_markers": sorted(
            [slug, seq, round(sent[slug, seq] - spoke_from, 3)]
            for slug, seq in set(sent) - received
            if seq != 1
        )[:100],
        "duplicates": duplicates,
        "window": [spoke_from, spoke_until],
        "pid": os.getpid(),
    }


def _generator(
    url: str,
    api_token: str,
    sessions: list[tuple[str, list[str], str]],
    seconds: float,
    barrier: multiprocessing.synchronize.Barrier,
    results: multiprocessing.Queue,
) -> None:
    tune_load_process()
    results.put(asyncio.run(run(url, api_token, sessions, seconds, barrier)))


def generate(
    url: str,
    api_token: str,
    sessions: list[tuple[str, list[str], str]],
    seconds: float,
    procs: int,
) -> dict:
    """Run the load from ``procs`` processes and merge what they measured."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(procs)
    results: multiprocessing.Queue = context.Queue()
    slices = [sessions[i::procs] for i in range(procs)]
    workers = [
        context.Process(target=_generator, args=(url, api_token, part, seconds, barrier, results))
        for part in slices
    ]
    for worker in workers:
        worker.start()
    parts = [results.get(timeout=seconds + 300) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    merged: dict = {}
    series = ("latency_ms", "frame_to_provider_ms", "provider_to_client_ms", "sender_lateness_ms")
    for key in series:
        merged[key] = percentiles([v for part in parts for v in part[key]])
    for key in ("sent", "lost", "lost_first", "duplicates"):
        merged[key] = sum(part[key] for part in parts)
    merged["silent_sessions"] = sorted(slug for part in parts for slug in part["silent_sessions"])
    merged["lost_markers"] = sorted(
        (marker for part in parts for marker in part["lost_markers"]), key=lambda m: m[2]
    )[:100]
    merged["window"] = [min(p["window"][0] for p in parts), max(p["window"][1] for p in parts)]
    merged["generator_pids"] = [part["pid"] for part in parts]
    return merged


def server_pids(url: str) -> list[int]:
    """The `make up` processes that serve ``url``: Daphnes, nginx workers, Celery workers, Redis,
    and PostgreSQL's postmaster (its backends are found while they live, ``_CpuSampler``)."""
    from benchmarks.fanout_load import nginx_worker_pids, processes, redis_server_pid

    pids = [*nginx_worker_pids(), redis_server_pid(os.environ["REDIS_URL"])]
    port = str(urlparse(os.environ["DATABASE_URL"]).port or 5432).encode()
    postmaster_port = b"\0-p\0" + port + b"\0"
    for pid, cmdline in processes():
        app = b"rooms.serve" in cmdline or (b"celery" in cmdline and b"worker" in cmdline)
        postmaster = (
            cmdline.split(b"\0", 1)[0].endswith(b"/postgres") and postmaster_port in cmdline
        )
        if app or postmaster:
            pids.append(pid)
    return pids


def _group(pid: int) -> str:
    """What a process is, for the CPU breakdown: daphne, ingest, worker, nginx, redis,
    postgres, load."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "other"
    if b"rooms.serve" in cmdline or b"daphne" in cmdline:
        return "daphne"
    if b"celery" in cmdline:
        return "ingest" if b"ingest" in cmdline else "worker"
    if cmdline.startswith(b"nginx"):
        return "nginx"
    if cmdline.startswith(b"redis-server"):
        return "redis"
    if cmdline.startswith(b"postgres") or b"/bin/postgres\0" in cmdline:
        return "postgres"
    return "load" if b"benchmarks.pipeline_latency" in cmdline else "other"


class _CpuSampler(threading.Thread):
    """The CPU seconds of every process of interest, twice a second, so that the CPU of the
    speaking window alone can be told from that of set-up and teardown. The load generator's
    processes are found by their parent (this process), PostgreSQL's backends by theirs (the
    postmaster, one of ``pids``). A backend that ends between two samples is counted through
    its parent's reaped-children time, which the postmaster's figure includes: with
    ``DB_CONN_MAX_AGE=0`` most backends live for one query batch."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.samples: list[tuple[float, dict[int, float]]] = []
        self.groups: dict[int, str] = {}  # told while the process lives
        self.postmasters = {pid for pid in pids if _group(pid) == "postgres"}
        self.done = threading.Event()

    def _pids(self) -> list[int]:
        parents = {os.getpid(), *self.postmasters}
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(stat[1]) in parents:
                    children.append(int(entry.name))
        return list(dict.fromkeys([*self.pids, *children]))

    def run(self) -> None:
        while not self.done.wait(0.5):
            at, used = time.perf_counter(), {}
            for pid in self._pids():
                try:
                    used[pid] = cpu_seconds(pid, children=pid in self.postmasters)
                except OSError:
                    continue
                if pid not in self.groups:
                    self.groups[pid] = _group(pid)
            self.samples.append((at, used))

    def window(self, start: float, end: float) -> dict[str, float]:
        """CPU (cores) of each process group between ``start`` and ``end`` (the samples just
        inside them)."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return {}
        (t0, a), (t1, b) = inside[0], inside[-1]
        out: dict[str, float] = {}
        for pid in b:
            if pid in a:
                group = self.groups.get(pid, "other")
                out[group] = out.get(group, 0.0) + (b[pid] - a[pid]) / (t1 - t0)
        out = {group: round(cores, 3) for group, cores in sorted(out.items())}
        out["server"] = round(sum(v for k, v in out.items() if k not in ("load", "other")), 3)
        return out


def measure(
    name: str,
    url: str,
    pids: list[int],
    api_token: str,
    sessions: list[tuple[str, list[str], str]],
    args: argparse.Namespace,
) -> dict:
    """One run of the load; the CPU of ``pids`` over it (each pid may end meanwhile), and of
    every process group over the speaking window alone."""
    sampler = _CpuSampler(pids)
    sampler.start()

    def cpu() -> dict[int, float]:
        out = {}
        for pid in pids:
            try:
                out[pid] = cpu_seconds(pid)
            except OSError:
                continue
        return out

    metrics_url = args.metrics_url if args.url else f"{url}/metrics"
    mixer0 = mixer_counts(metrics_url)
    cpu0, t0 = cpu(), time.monotonic()
    try:
        result = generate(url, api_token, sessions, args.seconds, max(1, args.procs))
    finally:
        sampler.done.set()
        sampler.join()
    mixer1 = mixer_counts(metrics_url)
    wall = time.monotonic() - t0
    cpu1 = cpu()
    used = sum(cpu1[pid] - cpu0[pid] for pid in cpu1 if pid in cpu0)
    # The load runs for setup + seconds + stop: the server's CPU over all of it, per second of
    # audio that was transcribed (each session's one mixed stream).
    audio_seconds = len(sessions) * args.seconds
    speaking = sampler.window(*result["window"])
    result.update(
        run=name,
        server_cpu_fraction=round(used / wall, 3),
        server_cpu_seconds=round(used, 2),
        cpu_seconds_per_audio_second=round(used / audio_seconds, 4),
        # While the speakers spoke: cores per process group, and the server's per audio second.
        speaking_cores=speaking,
        speaking_cpu_seconds_per_audio_second=round(
            speaking.get("server", 0.0) / max(1, len(sessions)), 4
        ),
        lost_percent=round(100 * result["lost"] / max(1, result["sent"]), 2),
        **{
            key: None
            if mixer0[name] is None or mixer1[name] is None
            else round(mixer1[name] - mixer0[name], 3)
            for key, name in MIXER_METRICS.items()
        },
    )
    return result


MIXER_METRICS = {
    "mixer_gaps": "rooms_mixer_gaps_total",
    "mixer_trimmed_seconds": "rooms_mixer_trimmed_seconds_total",
}


def mixer_counts(metrics_url: str) -> dict[str, float | None]:
    """The server's mixer counters (``rooms.metrics``); None for one it does not have (a
    baseline from before them)."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(metrics_url, timeout=30)
    response.raise_for_status()
    found = {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return {name: found.get(name) for name in MIXER_METRICS.values()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--speakers", type=int, default=1, help="microphones per session")
    parser.add_argument("--jitter", type=float, default=0.1, help="mixer jitter buffer, seconds")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (each: baseline, current)")
    parser.add_argument("--baseline", default="", help="git ref of the baseline code (embedded)")
    parser.add_argument("--current", default="", help="git ref to run instead of this tree")
    parser.add_argument("--url", default="", help="a running `make up` (distributed mode)")
    parser.add_argument("--print-env", action="store_true", help="what `make up` needs; exit")
    parser.add_argument(
        "--metrics-url",
        default="http://127.0.0.1:8001/metrics",
        help="with --url: a Daphne's own /metrics (direct, so loopback may read it)",
    )
    parser.add_argument(
        "--gc-tuning",
        choices=["on", "off", "both"],
        default="on",
        help="GC_TUNING of the Daphne; 'both' runs off then on in this invocation",
    )
    parser.add_argument(
        "--event-loop",
        choices=["uvloop", "asyncio", "both"],
        default="uvloop",
        help="ROOMS_EVENT_LOOP of the Daphne; 'both' runs asyncio then uvloop",
    )
    parser.add_argument(
        "--catch-up-yields",
        choices=["0", "default", "both"],
        default="default",
        help="TRANSCRIPTION_CATCH_UP_YIELDS of the Daphne; 'both' runs 0 then the default",
    )
    args = parser.parse_args()
    server_env = {
        "STT_PROVIDER": "benchmarks.instant_stt:InstantSttStream",
        "TRANSCRIPTION_JITTER_SECONDS": str(args.jitter),
    }
    if args.print_env or args.url:
        server_env.update(
            TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER="0",
            RATE_LIMIT_PER_MINUTE="1000000",
            RATE_LIMIT_CREATE_PER_MINUTE="1000000",
        )
    if args.print_env:
        print(" ".join(f"{k}={v}" for k, v in server_env.items()))
        return
    if args.url:
        from benchmarks.fanout_load import setup_django as setup_make_up

        setup_make_up()
        env: dict[str, str] = {}
    else:
        env = setup_django({**server_env, "TRANSCRIPTION_RUNNER": "embedded"})
    api_token, sessions = prepare(args.sessions, args.speakers)
    current = checkout(args.current) if args.current else ROOT
    codes = [("baseline", checkout(args.baseline))] if args.baseline else []
    codes.append(("current", current))
    gc_modes = ["off", "on"] if args.gc_tuning == "both" else [args.gc_tuning]
    loops = ["asyncio", "uvloop"] if args.event_loop == "both" else [args.event_loop]
    yields = ["0", "default"] if args.catch_up_yields == "both" else [args.catch_up_yields]
    runs = []
    for round_ in range(1, args.repeat + 1):
        # Baselines first: old code, GC tuning off, asyncio, no catch-up yields.
        for (code, root), y, loop, mode in itertools.product(codes, yields, loops, gc_modes):
            name = f"{code}-gc-{mode}-{loop}-yields-{y}"
            if args.url:
                result = measure(name, args.url, server_pids(args.url), api_token, sessions, args)
                result.update(round=round_, code="make up")
                runs.append(result)
                print(json.dumps(summarise(result)), flush=True)
                continue
            port = free_port()
            log = ROOT / "artifacts" / f"bench-daphne-{name}.log"
            daphne_env = {**env, "GC_TUNING": str(mode == "on"), "ROOMS_EVENT_LOOP": loop}
            if y != "default":
                daphne_env["TRANSCRIPTION_CATCH_UP_YIELDS"] = y
            daphne = start_daphne(daphne_env, port, log, root=root)
            try:
                url = f"http://127.0.0.1:{port}"
                result = measure(name, url, [daphne.pid], api_token, sessions, args)
                result.update(
                    round=round_,
                    code=code,
                    gc_tuning=mode,
                    event_loop=loop,
                    catch_up_yields=y,
                    daphne_rss_mb=round(rss_mb(daphne.pid), 1),
                )
            finally:
                daphne.terminate()
                daphne.wait(timeout=20)
            runs.append(result)
            print(json.dumps(summarise(result)), flush=True)
    summary: dict = {
        "sessions": args.sessions,
        "speakers_per_session": args.speakers,
        "seconds": args.seconds,
        "jitter_s": args.jitter,
        "generator_processes": args.procs,
        "baseline": args.baseline or None,
        "url": args.url or None,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "runs": runs,
        "by_run": {
            name: [summarise(r) for r in runs if r["run"] == name]
            for name in dict.fromkeys(r["run"] for r in runs)
        },
    }
    print(json.dumps(summary, indent=2))


def summarise(result: dict) -> dict:
    """The figures a run is judged by, on one line."""
    return {
        "run": result["run"],
        "round": result["round"],
        "p50_ms": round(result["latency_ms"]["median"], 1),
        "p99_ms": round(result["latency_ms"]["p99"], 1),
        "lost": result["lost"],
        "lost_percent": result["lost_percent"],
        "lost_first": result["lost_first"],
        "silent_sessions": len(result["silent_sessions"]),
        "duplicates": result["duplicates"],
        "sender_lateness_p99_ms": round(result["sender_lateness_ms"]["p99"], 1),
        "server_cpu_fraction": result["server_cpu_fraction"],
        "cpu_s_per_audio_s": result["cpu_seconds_per_audio_second"],
        "speaking_cores": result["speaking_cores"],
        "mixer_gaps": result["mixer_gaps"],
        "mixer_trimmed_seconds": result["mixer_trimmed_seconds"],
    }


if __name__ == "__main__":
    main()
