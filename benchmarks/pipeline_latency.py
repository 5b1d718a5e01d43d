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
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import random
import time

import httpx
from websockets.asyncio.client import connect

from benchmarks.harness import (
    ROOT,
    cpu_seconds,
    free_port,
    machine,
    percentiles,
    rss_mb,
    setup_django,
    start_daphne,
    tune_load_process,
)

FRAME_SECONDS = 0.04


def prepare(sessions: int) -> tuple[str, list[tuple[str, str, str]]]:
    from rest_framework.authtoken.models import Token

    from identity.models import User
    from sessions_app.models import VideoSession
    from sessions_app.tokens import transcription_token_create
    from spaces.models import SpaceMember
    from spaces.services import space_create

    speaker = User.objects.create_user(
        email="speaker@bench.local", password="x", display_name="Speaker"
    )
    listener = User.objects.create_user(
        email="listener@bench.local", password="x", display_name="Listener"
    )
    space = space_create(owner=speaker, name="Bench")
    SpaceMember.objects.create(space=space, user=listener)
    token = Token.objects.create(user=speaker).key
    out = []
    for i in range(sessions):
        session = VideoSession.objects.create(space=space, created_by=speaker, title=f"bench {i}")
        out.append(
            (
                session.slug,
                transcription_token_create(session_slug=session.slug, identity=speaker.identity),
                transcription_token_create(session_slug=session.slug, identity=listener.identity),
            )
        )
    return token, out


async def run(
    port: int,
    api_token: str,
    sessions: list[tuple[str, str, str]],
    seconds: float,
    barrier: multiprocessing.synchronize.Barrier | None = None,
) -> dict:
    from benchmarks.instant_stt import marked_frame, silent_frame

    base = f"ws://127.0.0.1:{port}"
    origin = f"http://127.0.0.1:{port}"
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

    async def listen(slug: str, ws, active: asyncio.Event) -> None:
        nonlocal duplicates
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message["type"] == "transcription_status" and message["status"] == "ACTIVE":
                active.set()
            elif message["type"] == "transcript" and message["is_final"]:
                seq, detected = message["text"].split()
                key = (slug, int(seq))
                if key in received:
                    duplicates += 1
                    continue
                received.add(key)
                if key in sent:
                    latencies.append((now - sent[key]) * 1000)
                    to_provider.append((float(detected) - sent[key]) * 1000)
                    from_provider.append((now - float(detected)) * 1000)

    async def speak(slug: str, ws) -> None:
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
            if i % 5 == 0:
                seq += 1
                sent[(slug, seq)] = time.perf_counter()
                await ws.send(marked_frame(seq))
            else:
                await ws.send(quiet)
            next_at += FRAME_SECONDS
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    speakers, listeners, tasks, actives = [], [], [], []
    for slug, speaker_token, listener_token in sessions:
        path = f"/ws/sessions/{slug}/transcript/?token="
        speakers.append(await connect(base + path + speaker_token, origin=origin, max_size=None))
        listener = await connect(base + path + listener_token, origin=origin, max_size=None)
        listeners.append(listener)
        active = asyncio.Event()
        actives.append(active)
        tasks.append(asyncio.create_task(listen(slug, listener, active)))
    headers = {"Authorization": f"Token {api_token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
        for slug, _, _ in sessions:
            (await http.post(f"/api/sessions/{slug}/transcription/start")).raise_for_status()
        await asyncio.wait_for(asyncio.gather(*(a.wait() for a in actives)), timeout=60)
        # Speakers also receive every event; drain them so the server never blocks on them.
        drains = [asyncio.create_task(_drain(ws)) for ws in speakers]
        if barrier is not None:
            # Every generator process starts speaking together.
            await asyncio.to_thread(barrier.wait)
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(speak(s[0], ws) for s, ws in zip(sessions, speakers, strict=True)))
        await asyncio.sleep(2.0)
        for slug, _, _ in sessions:
            (await http.post(f"/api/sessions/{slug}/transcription/stop")).raise_for_status()
    for ws in speakers + listeners:
        await ws.close()
    for task in tasks + drains:
        task.cancel()
    return {
        "latency_ms": latencies,
        "frame_to_provider_ms": to_provider,
        "provider_to_client_ms": from_provider,
        "sender_lateness_ms": lateness,
        "sent": len(sent),
        "lost": len(set(sent) - received),
        "duplicates": duplicates,
    }


def _generator(
    port: int,
    api_token: str,
    sessions: list[tuple[str, str, str]],
    seconds: float,
    barrier: multiprocessing.synchronize.Barrier,
    results: multiprocessing.Queue,
) -> None:
    tune_load_process()
    results.put(asyncio.run(run(port, api_token, sessions, seconds, barrier)))


def generate(
    port: int, api_token: str, sessions: list[tuple[str, str, str]], seconds: float, procs: int
) -> dict:
    """Run the load from ``procs`` processes and merge what they measured."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(procs)
    results: multiprocessing.Queue = context.Queue()
    slices = [sessions[i::procs] for i in range(procs)]
    workers = [
        context.Process(target=_generator, args=(port, api_token, part, seconds, barrier, results))
        for part in slices
    ]
    for worker in workers:
        worker.start()
    parts = [results.get(timeout=seconds + 180) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    merged: dict = {}
    series = ("latency_ms", "frame_to_provider_ms", "provider_to_client_ms", "sender_lateness_ms")
    for key in series:
        merged[key] = percentiles([v for part in parts for v in part[key]])
    for key in ("sent", "lost", "duplicates"):
        merged[key] = sum(part[key] for part in parts)
    return merged


async def _drain(ws) -> None:
    async for _ in ws:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--jitter", type=float, default=0.1, help="mixer jitter buffer, seconds")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
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
    env = setup_django(
        {
            "STT_PROVIDER": "benchmarks.instant_stt:InstantSttStream",
            "TRANSCRIPTION_RUNNER": "embedded",
            "TRANSCRIPTION_JITTER_SECONDS": str(args.jitter),
        }
    )
    api_token, sessions = prepare(args.sessions)
    gc_modes = ["off", "on"] if args.gc_tuning == "both" else [args.gc_tuning]
    loops = ["asyncio", "uvloop"] if args.event_loop == "both" else [args.event_loop]
    yields = ["0", "default"] if args.catch_up_yields == "both" else [args.catch_up_yields]
    results = {}
    # Baselines first: GC tuning off before on, asyncio before uvloop, no catch-up yields first.
    for y, loop, mode in itertools.product(yields, loops, gc_modes):
        name = f"gc-{mode}-{loop}-yields-{y}"
        port = free_port()
        log = ROOT / "artifacts" / f"bench-daphne-{name}.log"
        daphne_env = {**env, "GC_TUNING": str(mode == "on"), "ROOMS_EVENT_LOOP": loop}
        if y != "default":
            daphne_env["TRANSCRIPTION_CATCH_UP_YIELDS"] = y
        daphne = start_daphne(daphne_env, port, log)
        try:
            cpu0, t0 = cpu_seconds(daphne.pid), time.monotonic()
            result = generate(port, api_token, sessions, args.seconds, max(1, args.procs))
            cpu = (cpu_seconds(daphne.pid) - cpu0) / (time.monotonic() - t0)
            result.update(
                gc_tuning=mode,
                event_loop=loop,
                catch_up_yields=y,
                daphne_cpu_fraction=round(cpu, 3),
                daphne_rss_mb=round(rss_mb(daphne.pid), 1),
            )
        finally:
            daphne.terminate()
            daphne.wait(timeout=20)
        results[name] = result
    summary: dict = {
        "sessions": args.sessions,
        "seconds": args.seconds,
        "jitter_s": args.jitter,
        "generator_processes": args.procs,
        "machine": machine(),
        "runs": results,
    }
    if len(results) > 1:
        first, *_, last = results
        summary[f"p99_ratio_{first}_to_{last}"] = round(
            results[first]["latency_ms"]["p99"] / results[last]["latency_ms"]["p99"], 2
        )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
