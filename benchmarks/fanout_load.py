"""Fan-out load against the `make up` topology: transcript events -> thousands of WebSockets.

Start the topology first (``make up``), then, from another terminal:

    .venv/bin/python -m benchmarks.fanout_load                      # 400 sessions x 5 clients
    .venv/bin/python -m benchmarks.fanout_load --sessions 100 --seconds 20
    .venv/bin/python -m benchmarks.fanout_load --languages 5 --rounds 2   # issue 18

With ``--languages N`` (caption translation, issue 18) the run alternates two modes in one
invocation, ``--rounds`` of each: *single-language* (every client reads the original, one
message per event) and *N languages* (client k of a session reads caption language k of
``CAPTION_LANGS``: the publisher sends each event as the original and as N translations, and a
socket must receive the original and its own language's translation only). The ratio of the
p99s of the two modes is the figure.

What it does, all on loopback:
1. Creates (ORM, against the `make up` database) five benchmark users, a space they belong to
   and ``--sessions`` video sessions, and mints a transcription token per client.
2. Opens ``--clients-per-session`` transcript WebSockets per session THROUGH THE BALANCER
   (nginx spreads them over the Daphne processes), from ``--client-procs`` processes, and
   counts each Daphne's established connections.
3. A publisher process sends ``--rate`` transcript events per second per session for
   ``--seconds``: the messages of the real broadcast path (``broadcast.transcript_message``),
   each with a sequence number and its send time, PUBLISHed as the layer's ``group_send`` would,
   what is due in one Redis pipeline (``--publish pipelined``, the default: the publisher cannot
   be the bottleneck, and its lateness is reported) or one ``group_send`` each
   (``--publish group-send``).
4. Every client records when each event arrived: delivery latency (median, p95, p99), events
   lost (sent to its session, never received) and duplicated; Daphne RSS before and with the
   connections gives memory per connection (meaningful on freshly started Daphnes: RSS does
   not shrink after an earlier run); CPU seconds of each Daphne during the run.

Bounded: at most ``MAX_CLIENTS`` sockets, the whole run under ``--max-seconds``; it refuses a
non-loopback URL. Exit status 1 when events were lost or duplicated or p99 is over
``--target-p99-ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.harness import ROOT, cpu_seconds, machine, rss_mb, tune_load_process
from benchmarks.wsclient import CONNECT_ERRORS, Socket, connect

MAX_CLIENTS = 5000
CAPTION_LANGS = ("ru", "de", "fr", "es", "it", "uk", "pl", "nl")
CONNECT_ATTEMPTS = 5
TEXT = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
    "the age of foolishness, it was the epoch of belief"
)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def setup_django() -> None:
    """This process on the `make up` database and Redis (its defaults, or the environment)."""
    os.environ.setdefault("DATABASE_URL", "postgres://rooms@127.0.0.1:55432/rooms")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:56379/0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rooms.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


@dataclass(frozen=True)
class Target:
    session_id: int
    path: str


def set_caption_languages(clients_per_session: int, languages: int) -> None:
    """Client k of every session reads caption language k (mod ``languages``); 0: all read the
    original. The socket takes its person's choice at connect (``User.caption_language``)."""
    from identity.models import User

    for i in range(clients_per_session):
        language = CAPTION_LANGS[i % languages] if languages else ""
        User.objects.filter(email=f"fanout-{i}@bench.local").update(caption_language=language)


def prepare(sessions: int, clients_per_session: int) -> list[list[Target]]:
    """Users, a space and sessions in the database; per session, one socket path per client."""
    from identity.models import User
    from sessions_app.services import session_create
    from sessions_app.tokens import transcription_token_create
    from spaces.models import Space, SpaceMember
    from spaces.services import space_create

    users = []
    for i in range(clients_per_session):
        user = User.objects.filter(email=f"fanout-{i}@bench.local").first()
        if user is None:
            user = User.objects.create_user(
                email=f"fanout-{i}@bench.local", password=None, display_name=f"Listener {i}"
            )
        users.append(user)
    space = Space.objects.filter(created_by=users[0], name="Fan-out benchmark").first()
    if space is None:
        space = space_create(owner=users[0], name="Fan-out benchmark")
    for user in users[1:]:
        SpaceMember.objects.get_or_create(space=space, user=user)
    plan = []
    for n in range(sessions):
        session = session_create(space=space, by=users[0], title=f"Fan-out {n}")
        path = f"/ws/sessions/{session.slug}/transcript/"
        plan.append(
            [
                Target(
                    session.pk,
                    path
                    + "?token="
                    + transcription_token_create(session_slug=session.slug, identity=u.identity),
                )
                for u in users
            ]
        )
    return plan


def cleanup(session_ids: list[int]) -> None:
    from sessions_app.models import VideoSession

    VideoSession.objects.filter(pk__in=session_ids).delete()


# --- clients ---------------------------------------------------------------------------------


@dataclass
class ClientStats:
    connected: int = 0
    failed: int = 0
    retries: int = 0
    errors: Counter = field(default_factory=Counter)
    dropped: int = 0
    # translations delivered to a socket reading another language (must stay 0)
    wrong_language: int = 0
    # (send time, delivery latency in ms) of every event received
    latencies_ms: list[tuple[float, float]] = field(default_factory=list)
    # per client: (session id, distinct events received, duplicate deliveries)
    clients: list[tuple[int, int, int]] = field(default_factory=list)


async def _client(
    url: str,
    origin: str,
    target: Target,
    stats: ClientStats,
    gate: asyncio.Semaphore,
    sockets: list[Socket],
    stop: asyncio.Event,
) -> None:
    # Like the page: a refused or reset handshake is retried after a pause (nginx answers 502
    # for a while once a busy Daphne reset a handshake).
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            async with gate:
                ws = await connect(url + target.path, origin, timeout=60)
                # connected, history, transcription_status: then it is in the session's group.
                opening = [json.loads(await ws.recv(timeout=60)) for _ in range(3)]
                language = (opening[0].get("captions") or {}).get("language", "")
            break
        except (*CONNECT_ERRORS, ConnectionError) as exc:
            stats.errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
            if attempt == CONNECT_ATTEMPTS - 1:
                stats.failed += 1
                return
            stats.retries += 1
            await asyncio.sleep(1.0 + attempt)
    stats.connected += 1
    sockets.append(ws)
    seen: Counter = Counter()

    def on_text(raw: str) -> None:
        now = time.time()
        bench = json.loads(raw).get("bench")
        if bench is not None:
            if bench.get("lang", language) != language:
                stats.wrong_language += 1
                return
            stats.latencies_ms.append((bench["sent"], (now - bench["sent"]) * 1000))
            seen[(bench["seq"], bench.get("lang", ""))] += 1

    ws.on_text = on_text
    await ws.wait_closed()
    if not stop.is_set():
        # Closed under us: its missing events count as lost.
        stats.dropped += 1
    stats.clients.append((target.session_id, len(seen), sum(n - 1 for n in seen.values())))


def client_process(
    url: str,
    targets: list[Target],
    concurrency: int,
    loop: str,
    conn: multiprocessing.connection.Connection,
) -> None:
    """Open every socket of ``targets``; report "ready"; listen until told "stop"; report stats."""
    raise_fd_limit()
    tune_load_process(loop)
    origin = "http://" + urlsplit(url).netloc
    ws_url = url.replace("http://", "ws://", 1)

    async def main() -> ClientStats:
        stats = ClientStats()
        gate, stop = asyncio.Semaphore(concurrency), asyncio.Event()
        sockets: list[Socket] = []
        tasks = [
            asyncio.create_task(_client(ws_url, origin, t, stats, gate, sockets, stop))
            for t in targets
        ]
        while stats.connected + stats.failed < len(targets):
            await asyncio.sleep(0.2)
        conn.send(("ready", stats.connected, stats.failed))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
        stop.set()
        await asyncio.gather(*(ws.close() for ws in sockets))
        await asyncio.gather(*tasks)
        return stats

    stats = asyncio.run(main())
    conn.send(("done", stats))


# --- publisher ---------------------------------------------------------------------------------


def publisher_process(
    session_ids: list[int],
    rate: float,
    seconds: float,
    loop: str,
    languages: int,
    pipelined: bool,
    conn: multiprocessing.connection.Connection,
) -> None:
    """``rate`` events/s for each session, spread evenly over time, through the real broadcast.

    Reports "ready" once set up and starts at the wall time it is then sent, with the other
    publishers: their start-up (Django, imports) must not overlap the measured publishing.
    """
    setup_django()
    tune_load_process(loop)
    conn.send("ready")
    start_wall = conn.recv()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_at_start = usage.ru_utime + usage.ru_stime
    from channels.layers import get_channel_layer
    from django.conf import settings
    from redis import asyncio as aioredis

    from transcription.live import broadcast

    layer: Any = None
    redis: Any = None
    publish_ms: list[float] = []

    def messages(session_id: int, payload: dict) -> list[dict]:
        out = [broadcast.transcript_message(payload)]
        if languages:
            # Caption translation: the final in each language, coalesced into one group message
            # as the run sends what arrives within its window (``CAPTIONS_COALESCE_SECONDS``);
            # each socket gets its own language's frame only.
            seq = payload["bench"]["seq"]
            out.append(
                broadcast.translations_message(
                    [
                        {
                            "type": "translation",
                            "utterance_id": payload["utterance_id"],
                            "language": language,
                            "text": f"[{language}] {TEXT}",
                            "start": payload["start"],
                            "end": payload["end"],
                            "bench": {"seq": seq, "sent": time.time(), "lang": language},
                        }
                        for language in CAPTION_LANGS[:languages]
                    ]
                )
            )
        return out

    async def publish_each(batch: list[tuple[int, dict]]) -> None:
        """Every message its own ``group_send`` (concurrent: pipelined only as far as the
        layer's connection pool allows; each costs a pool connection and a round trip)."""

        async def one(session_id: int, payload: dict) -> None:
            group = broadcast.session_group(session_id)
            for message in messages(session_id, payload):
                await layer.group_send(group, message)
            publish_ms.append((time.time() - payload["bench"]["sent"]) * 1000)

        await asyncio.gather(*(one(sid, payload) for sid, payload in batch))

    async def publish_pipelined(batch: list[tuple[int, dict]]) -> None:
        """What is due, in ONE round trip: the layer's own group channel names and serialised
        messages (what ``group_send`` publishes), PUBLISHed in one Redis pipeline."""
        inner = layer._get_layer()
        pipe = redis.pipeline(transaction=False)
        for session_id, payload in batch:
            channel = inner._get_group_channel_name(broadcast.session_group(session_id))
            for message in messages(session_id, payload):
                pipe.publish(channel, layer.serialize(message))
        await pipe.execute()
        done = time.time()
        publish_ms.extend((done - payload["bench"]["sent"]) * 1000 for _, payload in batch)

    publish = publish_pipelined if pipelined else publish_each
    sent: dict[int, int] = dict.fromkeys(session_ids, 0)
    interval = 1.0 / rate

    def event(session_id: int) -> dict:
        seq = sent[session_id]
        sent[session_id] += 1
        return {
            "type": "transcript",
            "utterance_id": f"bench-{session_id}-{seq}",
            "text": TEXT,
            "is_final": True,
            "speaker_identity": "bench",
            "speaker_name": "Bench",
            "start": seq * interval,
            "end": seq * interval + interval,
            "language": "en",
            "bench": {"seq": seq, "sent": time.time()},
        }

    async def main() -> tuple[dict[int, int], list[float]]:
        nonlocal layer, redis
        layer = get_channel_layer()
        redis = aioredis.Redis.from_url(settings.REDIS_URL)
        lateness_ms: list[float] = []
        count = len(session_ids)
        # Session k's events are due at start + k/count*interval + n*interval.
        start = time.monotonic() + max(0.0, start_wall - time.time())
        end = start + seconds
        schedule = [(start + k / count * interval, sid) for k, sid in enumerate(session_ids)]
        position = 0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            batch = []
            while True:
                due, sid = schedule[position]
                if due > now:
                    break
                lateness_ms.append((now - due) * 1000)
                schedule[position] = (due + interval, sid)
                position = (position + 1) % count
                batch.append(sid)
            # What is due goes out together (pipelined on the layer's connection); the next
            # batch waits for it, so a publisher that cannot keep up shows as lateness instead
            # of an unbounded backlog.
            await publish([(sid, event(sid)) for sid in batch])
            next_due = schedule[position][0]
            await asyncio.sleep(max(0.0, min(next_due, end) - time.monotonic()))
        return sent, lateness_ms

    sent, lateness = asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send((sent, lateness, publish_ms, usage.ru_utime + usage.ru_stime - cpu_at_start))


# --- orchestration -----------------------------------------------------------------------------


def processes() -> Iterator[tuple[int, bytes]]:
    """(pid, command line with NUL separators) of every process that can be read."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield int(entry.name), (entry / "cmdline").read_bytes()
            except OSError:
                continue


def daphne_pids(ports: list[int]) -> dict[int, int]:
    """port -> pid of the Daphne process serving it."""
    found: dict[int, int] = {}
    for pid, cmdline in processes():
        args = cmdline.split(b"\0")
        is_daphne = any(a.endswith(b"daphne") for a in args) or b"rooms.serve" in args
        if is_daphne and b"-p" in args:
            port = int(args[args.index(b"-p") + 1])
            if port in ports:
                found[port] = pid
    return found


def established(port: int) -> int:
    """Connections open to the Daphne of ``port``: TCP ones to 127.0.0.1:``port``
    (/proc/net/tcp), and those on its Unix socket ``web-<port>.sock``, which is how the balancer
    of ``make up`` reaches it (/proc/net/unix: accepted sockets carry the listener's path)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "01" and int(local.split(":")[1], 16) == port:
            count += 1
    suffix = f"/web-{port}.sock"
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        # Num RefCount Protocol Flags Type St Inode Path; St 03: connected.
        if len(fields) == 8 and fields[5] == "03" and fields[7].endswith(suffix):
            count += 1
    return count


def nginx_worker_pids() -> list[int]:
    """The pids of the running nginx worker processes (the balancer of `make up`)."""
    return [pid for pid, cmdline in processes() if cmdline.startswith(b"nginx: worker process")]


def redis_server_pid(url: str) -> int:
    """The pid of the redis-server listening on ``url``'s port."""
    port = f":{urlsplit(url).port}".encode()
    for pid, cmdline in processes():
        if cmdline.startswith(b"redis-server") and cmdline.split(b"\0")[0].endswith(port):
            return pid
    raise RuntimeError(f"no redis-server for {url}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the balancer")
    parser.add_argument(
        "--web-ports",
        default=os.environ.get("UP_WEB_PORTS", "8001 8002").replace(",", " "),
        help="Daphne ports behind the balancer (memory, CPU, connection counts)",
    )
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--clients-per-session", type=int, default=5)
    parser.add_argument("--rate", type=float, default=5.0, help="events/s per session")
    parser.add_argument("--seconds", type=float, default=30.0, help="publishing time")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="event loop of the load generator and publisher processes",
    )
    parser.add_argument(
        "--publishers",
        type=int,
        default=1,
        help="publisher processes (one sends the 2,000 events/s; more cost more CPU in total)",
    )
    parser.add_argument(
        "--publish",
        choices=["pipelined", "group-send"],
        default="pipelined",
        help="pipelined: each batch of due events in one Redis pipeline of PUBLISHes (the "
        "layer's channel names and serialisation); group-send: one group_send per message",
    )
    parser.add_argument("--connect-concurrency", type=int, default=20, help="per client process")
    parser.add_argument("--drain", type=float, default=5.0, help="listening after the last event")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="bound on the whole run")
    parser.add_argument("--target-p99-ms", type=float, default=250.0)
    parser.add_argument(
        "--languages",
        type=int,
        default=0,
        choices=range(len(CAPTION_LANGS) + 1),
        metavar=f"0..{len(CAPTION_LANGS)}",
        help="caption languages among each session's clients; >0 alternates with a "
        "single-language round (issue 18)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds of each mode")
    args = parser.parse_args()

    host = urlsplit(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("loopback only: --url must point at 127.0.0.1/localhost")
    total = args.sessions * args.clients_per_session
    if total > MAX_CLIENTS:
        parser.error(f"at most {MAX_CLIENTS} clients")
    ports = [int(p) for p in args.web_ports.split()]
    raise_fd_limit()
    setup_django()
    modes = [0] if args.languages == 0 else [0, args.languages]
    results: dict[int, list[float]] = {mode: [] for mode in modes}
    all_ok = True
    for round_number in range(args.rounds):
        for mode in modes:
            label = f"{mode} languages" if mode else "single language"
            print(f"\n=== round {round_number + 1}/{args.rounds}: {label} ===")
            ok, p99 = run_once(args, ports, mode)
            results[mode].append(p99)
            all_ok = all_ok and ok
    if args.languages:
        single, multi = results[0], results[args.languages]
        print("\n=== summary ===")
        print("single-language p99 ms per round: " + ", ".join(f"{v:.1f}" for v in single))
        print(
            f"{args.languages}-language p99 ms per round: " + ", ".join(f"{v:.1f}" for v in multi)
        )
        ratios = [m / s if s else float("inf") for s, m in zip(single, multi, strict=True)]
        print("ratio per round: " + ", ".join(f"{r:.2f}" for r in ratios))
        print(f"median ratio {pct(ratios, 0.5):.2f} (target <= 1.5)")
    return 0 if all_ok else 1


def run_once(args: argparse.Namespace, ports: list[int], languages: int) -> tuple[bool, float]:
    """One measured run; (target met, delivery p99 in ms)."""
    total = args.sessions * args.clients_per_session
    deadline = time.monotonic() + args.max_seconds
    pids = daphne_pids(ports)
    if len(pids) != len(ports):
        raise SystemExit(
            f"Daphne processes on ports {ports} not found (found {pids}): is `make up` running?"
        )
    from django.db import connections

    t0 = time.monotonic()
    set_caption_languages(args.clients_per_session, languages)
    plan = prepare(args.sessions, args.clients_per_session)
    session_ids = [targets[0].session_id for targets in plan]
    connections.close_all()
    print(f"prepared {args.sessions} sessions, {total} tokens in {time.monotonic() - t0:.1f} s")
    rss_before = {p: rss_mb(pid) for p, pid in pids.items()}
    conns_before = {p: established(p) for p in ports}

    ctx = multiprocessing.get_context("spawn")
    flat = [t for targets in plan for t in targets]
    pipes, procs = [], []
    try:
        for i in range(args.client_procs):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=client_process,
                args=(
                    args.url,
                    flat[i :: args.client_procs],
                    args.connect_concurrency,
                    args.loop,
                    theirs,
                ),
            )
            proc.start()
            pipes.append(ours)
            procs.append(proc)
        t0 = time.monotonic()
        connected = failed = 0
        for pipe in pipes:
            if not pipe.poll(max(1.0, deadline - time.monotonic())):
                raise TimeoutError("clients did not connect within --max-seconds")
            _, ok, bad = pipe.recv()
            connected, failed = connected + ok, failed + bad
        connect_s = time.monotonic() - t0
        print(f"connected {connected}/{total} sockets in {connect_s:.1f} s ({failed} failed)")
        time.sleep(3.0)  # let allocations settle before reading memory
        per_port = {p: established(p) - conns_before[p] for p in ports}
        rss_with = {p: rss_mb(pid) for p, pid in pids.items()}
        redis_pid = redis_server_pid(os.environ["REDIS_URL"])
        nginx_pids = nginx_worker_pids()

        # Pipelined (the default), what is due goes out in one round trip, so the publisher
        # cannot be the bottleneck; ``--publish group-send`` is the old, one call per message.
        publishers = []
        for i in range(args.publishers):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=publisher_process,
                args=(
                    session_ids[i :: args.publishers],
                    args.rate,
                    args.seconds,
                    args.loop,
                    languages,
                    args.publish == "pipelined",
                    theirs,
                ),
            )
            proc.start()
            publishers.append((proc, ours))
        for _, pipe in publishers:
            if not pipe.poll(120):
                raise TimeoutError("publisher did not start")
            pipe.recv()  # "ready"
        load_before = os.getloadavg()[0]
        cpu_before = {p: cpu_seconds(pid) for p, pid in pids.items()}
        others_before = {
            pid: cpu_seconds(pid) for pid in [redis_pid, *nginx_pids, *(c.pid for c in procs)]
        }
        start_wall = time.time() + 0.5
        for _, pipe in publishers:
            pipe.send(start_wall)
        sent: dict[int, int] = {}
        lateness: list[float] = []
        publish_ms: list[float] = []
        publisher_cpu = 0.0
        for _, pipe in publishers:
            if not pipe.poll(args.seconds + 300):
                raise TimeoutError("publisher did not finish")
            its_sent, its_lateness, its_publish_ms, its_cpu = pipe.recv()
            sent.update(its_sent)
            lateness += its_lateness
            publish_ms += its_publish_ms
            publisher_cpu += its_cpu
        cpu_run = {p: cpu_seconds(pid) - cpu_before[p] for p, pid in pids.items()}
        others_run = {pid: cpu_seconds(pid) - cpu for pid, cpu in others_before.items()}
        load_after = os.getloadavg()[0]
        for proc, _ in publishers:
            proc.join()
        time.sleep(args.drain)
        for pipe in pipes:
            pipe.send("stop")
        stats = []
        for pipe in pipes:
            if not pipe.poll(max(1.0, deadline - time.monotonic())):
                raise TimeoutError("clients did not report within --max-seconds")
            stats.append(pipe.recv()[1])
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
        cleanup(session_ids)

    timed = sorted(v for s in stats for v in s.latencies_ms)
    latencies = [ms for _, ms in timed]
    dropped = sum(s.dropped for s in stats)
    clients = [c for s in stats for c in s.clients]
    # Every connected client was in its session's group before the first event was sent.
    # Each client: the original of every event, and its language's translation of it.
    per_event = 2 if languages else 1
    expected = sum(sent[sid] * per_event for sid, _, _ in clients)
    distinct = sum(n for _, n, _ in clients)
    duplicated = sum(d for _, _, d in clients)
    delivered = distinct + duplicated
    lost = expected - distinct
    events_sent = sum(sent.values())
    seconds = args.seconds
    memory_mb = sum(rss_with[p] - rss_before[p] for p in ports)

    print()
    print(f"machine: {machine()}, load average {load_before:.1f} -> {load_after:.1f}")
    print(
        f"{args.sessions} sessions x {args.clients_per_session} clients = {total} sockets "
        f"({connected} connected) over {len(ports)} Daphnes via {args.url}; "
        f"{args.rate:g} events/s/session for {seconds:g} s"
    )
    print("sockets per Daphne: " + ", ".join(f":{p} {per_port[p]}" for p in ports))
    print(
        f"events published {events_sent} ({events_sent / seconds:.0f}/s), deliveries expected "
        f"{expected} ({expected / seconds:.0f}/s), delivered {delivered}"
    )
    print(
        f"delivery latency ms: median {pct(latencies, 0.5):.1f}  p95 {pct(latencies, 0.95):.1f}  "
        f"p99 {pct(latencies, 0.99):.1f}  max {max(latencies, default=0):.1f}"
    )
    wrong = sum(s.wrong_language for s in stats)
    print(f"lost {lost}, duplicated {duplicated}, sockets dropped mid-run {dropped}")
    if languages:
        print(
            f"{languages} caption languages ({', '.join(CAPTION_LANGS[:languages])}): "
            f"{per_event} messages per event per client; translations delivered to a reader "
            f"of another language: {wrong}"
        )
    errors: Counter = Counter()
    for s in stats:
        errors.update(s.errors)
    retries = sum(s.retries for s in stats)
    print(f"handshakes retried {retries}; failed for good {failed}")
    for text, n in errors.most_common(3):
        print(f"  {n} x {text}")
    print(
        f"publishers: lateness behind schedule ms median {pct(lateness, 0.5):.1f} "
        f"p99 {pct(lateness, 0.99):.1f}; stamp -> group_send returned ms median "
        f"{pct(publish_ms, 0.5):.1f} p99 {pct(publish_ms, 0.99):.1f}"
    )
    for p in ports:
        per_conn = (rss_with[p] - rss_before[p]) * 1024 / max(1, per_port[p])
        print(
            f"Daphne :{p}: RSS {rss_before[p]:.0f} -> {rss_with[p]:.0f} MB "
            f"({per_conn:.0f} KB per connection), CPU {cpu_run[p] / seconds * 100:.0f} % "
            f"of a core while publishing"
        )
    print(f"memory per connection (both Daphnes): {memory_mb * 1024 / max(1, connected):.0f} KB")
    clients_cpu = sum(others_run[proc.pid] for proc in procs)
    print(
        f"CPU while publishing, % of a core: Redis {others_run[redis_pid] / seconds * 100:.0f}, "
        f"nginx {sum(others_run[pid] for pid in nginx_pids) / seconds * 100:.0f} "
        f"({len(nginx_pids)} workers), "
        f"publishers {publisher_cpu / seconds * 100:.0f} ({args.publishers}), "
        f"load generator {clients_cpu / seconds * 100:.0f} ({len(procs)} processes)"
    )
    third = len(latencies) // 3
    if third:
        print(
            f"p99 of the events sent in the first / last third of the run: "
            f"{pct(latencies[:third], 0.99):.1f} / {pct(latencies[-third:], 0.99):.1f} ms"
        )
    p99 = pct(latencies, 0.99)
    ok = lost == 0 and duplicated == 0 and wrong == 0 and failed == 0
    ok = ok and p99 <= args.target_p99_ms
    verdict = "MET" if ok else "NOT MET"
    print(f"target p99 <= {args.target_p99_ms:g} ms, zero lost/duplicated: {verdict}")
    return ok, p99


if __name__ == "__main__":
    sys.exit(main())
