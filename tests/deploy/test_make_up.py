"""`make up` end to end: the real ``scripts/up.sh`` with free ports and a temporary data dir.

It must serve through nginx from BOTH Daphne processes (nginx's access log names the upstream
of every request), carry transcript WebSockets on both and fan a session event out to all of
them through Redis, and stop every process it started (nginx, Daphnes, Celery, PostgreSQL,
Redis) on Ctrl-C, leaving its ports free, and exit 0 even when it was started with SIGINT
ignored (then a shell cannot trap it: up.sh starts itself again with the default handling).
Generous timeouts: on a shared 2-core box a fresh start (initdb, migrations, six Python
processes) takes a minute or more.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.live import ROOT, free_port

pytestmark = pytest.mark.services

START_TIMEOUT = 300.0
STOP_TIMEOUT = 90.0
DEMO_EMAIL = "demo@rooms.local"
DEMO_PASSWORD = "rooms-demo-password"  # demo_setup's documented account
# nginx names a Daphne by its Unix socket, web-<port>.sock (scripts/up.sh).
UPSTREAM = re.compile(
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) .*upstream=unix:\S*/web-(?P<port>\d+)\.sock'
)


@dataclass
class Up:
    process: subprocess.Popen
    data: Path
    log: Path
    port: int
    web_ports: tuple[int, int]
    pg_port: int
    redis_port: int
    children: dict[int, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.data / "nginx" / "access.log"

    def output(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-6000:]

    def upstreams(self, request_prefix: str) -> dict[str, set[int]]:
        """Status -> the Daphne ports that answered requests starting with ``request_prefix``."""
        seen: dict[str, set[int]] = {}
        if not self.access_log.exists():
            return seen
        for line in self.access_log.read_text(errors="replace").splitlines():
            match = UPSTREAM.search(line)
            if match and match["request"].startswith(request_prefix):
                seen.setdefault(match["status"], set()).add(int(match["port"]))
        return seen


def _ppid_map() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) for every process."""
    result: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        result[int(entry.name)] = (int(fields[1]), fields[0])
    return result


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap it counts as gone)."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _descendants(root: int) -> set[int]:
    parents = _ppid_map()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _service_pids(data: Path) -> dict[int, str]:
    """The daemonized PostgreSQL and Redis servers (not children of up.sh once detached)."""
    pids: dict[int, str] = {}
    postmaster = data / "services" / "pg" / "postmaster.pid"
    if postmaster.exists():
        pids[int(postmaster.read_text().split()[0])] = "postgres"
    redis = data / "services" / "redis.pid"
    if redis.exists():
        pids[int(redis.read_text().strip())] = "redis-server"
    return pids


def _wait_ready(up: Up) -> None:
    """Until the balancer answers ``/health`` with 200 (the Daphnes are up behind it)."""
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if up.process.poll() is not None:
            pytest.fail(f"scripts/up.sh exited with {up.process.returncode}:\n{up.output()}")
        try:
            reply = httpx.get(f"{up.url}/health", timeout=5.0)
            if reply.status_code == 200 and reply.json() == {"status": "ok"}:
                return
            last = f"HTTP {reply.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(1.0)
    pytest.fail(f"balancer not ready after {START_TIMEOUT:.0f} s ({last}):\n{up.output()}")


def _stop(up: Up) -> None:
    """Ctrl-C as a terminal sends it: SIGINT to up.sh's process group."""
    if up.process.poll() is None:
        os.killpg(up.process.pid, signal.SIGINT)
    try:
        up.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(up.process.pid, signal.SIGKILL)
        up.process.wait(timeout=10)


@pytest.fixture(scope="module")
def up() -> Iterator[Up]:
    data = Path(tempfile.mkdtemp(prefix="rooms-up-test-"))
    # PostgreSQL runs as the postgres user when we are root, nginx workers as nobody.
    data.chmod(0o755)
    log = ROOT / "artifacts" / "make-up.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    ports = [free_port() for _ in range(5)]
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG"}}
    env.update(
        {
            "UP_DIR": str(data),
            "UP_PORT": str(ports[0]),
            "UP_WEB_PORTS": f"{ports[1]} {ports[2]}",
            "PG_PORT": str(ports[3]),
            "REDIS_PORT": str(ports[4]),
        }
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            # With SIGINT ignored, as a CI runner or a shell without job control starts a
            # background command: up.sh must still stop on Ctrl-C and exit 0 (not honcho's 130).
            ["env", "--ignore-signal=INT", str(ROOT / "scripts" / "up.sh")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    state = Up(process, data, log, ports[0], (ports[1], ports[2]), ports[3], ports[4])
    try:
        _wait_ready(state)
        state.children = {pid: _cmdline(pid) for pid in _descendants(process.pid)}
        state.children.update(_service_pids(data))
        yield state
    finally:
        _stop(state)
        for pid in state.children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(
            [str(ROOT / "scripts" / "services.sh"), "stop", str(data / "services")],
            env={**env, "PG_PORT": str(ports[3]), "REDIS_PORT": str(ports[4])},
            check=False,
        )
        shutil.rmtree(data, ignore_errors=True)


def test_up_runs_the_whole_topology(up: Up) -> None:
    commands = list(up.children.values())

    def count(pattern: str) -> int:
        return sum(1 for c in commands if re.search(pattern, c))

    for port in up.web_ports:
        assert count(rf"-m rooms.serve .*-p {port} ") == 1, commands
    assert count(r"nginx: master process") == 1, commands
    assert count(r"celery -A rooms worker -Q default") >= 1, commands
    assert count(r"celery -A rooms worker -Q ingest") >= 1, commands
    assert count(r"celery -A rooms beat") == 1, commands
    assert "postgres" in commands and "redis-server" in commands, commands


def test_balancer_spreads_requests_over_both_daphnes(up: Up) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=up.url, timeout=30.0) as client:
        while time.monotonic() < deadline:
            for _ in range(6):
                assert client.get("/health").status_code == 200
            if up.upstreams("GET /health ").get("200") == set(up.web_ports):
                break
            time.sleep(0.5)
    assert up.upstreams("GET /health ").get("200") == set(up.web_ports), (
        f"nginx served /health from {up.upstreams('GET /health ')}, "
        f"expected both Daphnes {up.web_ports}"
    )


async def _next_message(socket_: ClientConnection) -> dict:
    return json.loads(await asyncio.wait_for(socket_.recv(), timeout=30))


async def _until_type(socket_: ClientConnection, kind: str) -> dict:
    while True:
        message = await _next_message(socket_)
        if message.get("type") == kind:
            return message


# Sessions whose sockets the balancer places by their slug's hash: with 16 of them, the chance
# that all land on the same one of two Daphnes is 2 / 2**16.
AFFINITY_SESSIONS = 16


async def _open_session(api: httpx.AsyncClient, space_slug: str, up: Up) -> tuple[str, list]:
    """A new session and two of its transcript sockets, each through `connected`, `history`."""
    reply = await api.post(f"/api/spaces/{space_slug}/sessions", json={"title": "Up test"})
    assert reply.status_code == 201, reply.text
    slug = reply.json()["slug"]
    reply = await api.post(f"/api/sessions/{slug}/join")
    assert reply.status_code == 200, reply.text
    joined = reply.json()
    ws_url = f"ws://127.0.0.1:{up.port}{joined['transcript_ws_path']}"
    ws_url += f"?token={joined['transcription_token']}"
    sockets = []
    for _ in range(2):
        sock = await connect(ws_url, origin=up.url, open_timeout=30)
        sockets.append(sock)
        connected = await _next_message(sock)
        assert connected["type"] == "connected" and connected["session"] == slug
        assert (await _next_message(sock))["type"] == "history"
    return slug, sockets


@pytest.mark.asyncio
async def test_a_sessions_sockets_share_a_daphne_and_hear_its_end_from_either(up: Up) -> None:
    async with httpx.AsyncClient(base_url=up.url, timeout=30.0) as api:
        reply = await api.post(
            "/api/auth/token", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
        )
        assert reply.status_code == 200, reply.text
        api.headers["Authorization"] = f"Token {reply.json()['token']}"
        spaces = (await api.get("/api/spaces")).json()
        space = next(s for s in spaces if s["name"] == "Demo space")
        opened: dict[str, list] = {}
        try:
            for _ in range(AFFINITY_SESSIONS):
                slug, sockets = await _open_session(api, space["slug"], up)
                opened[slug] = sockets
            # Each session is ended by an API request that either Daphne serves (least_conn):
            # the broadcast goes through Redis to the Daphne holding the session's sockets.
            for slug, sockets in opened.items():
                reply = await api.post(f"/api/sessions/{slug}/end")
                assert reply.status_code == 200, reply.text
                for sock in sockets:
                    await _until_type(sock, "session_ended")
                    await asyncio.wait_for(sock.wait_closed(), timeout=30)
                    assert sock.close_code == 4004
        finally:
            for sockets in opened.values():
                for sock in sockets:
                    await sock.close()

    # nginx logs a socket when it closes: every session's two sockets on one Daphne, and the
    # sessions spread over both.
    def placement() -> dict[str, set[int]]:
        return {
            slug: up.upstreams(f"GET /ws/sessions/{slug}/transcript/").get("101", set())
            for slug in opened
        }

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(placement().values()):
        await asyncio.sleep(0.5)
    where = placement()
    assert all(len(ports) == 1 for ports in where.values()), f"a session was split: {where}"
    assert set().union(*where.values()) == set(up.web_ports), (
        f"sessions went to {where}, expected both Daphnes {up.web_ports}"
    )


def test_ctrl_c_stops_every_process_and_frees_the_ports(up: Up) -> None:
    up.children.update({pid: _cmdline(pid) for pid in _descendants(up.process.pid)})
    assert len(up.children) >= 9, f"fewer processes than the topology has: {up.children}"
    ports = (up.port, *up.web_ports, up.pg_port, up.redis_port)
    assert all(_listening(port) for port in ports), "not every server was listening"

    _stop(up)

    assert up.process.returncode == 0, up.output()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in up.children):
        time.sleep(0.5)
    left = {pid: cmd for pid, cmd in up.children.items() if _alive(pid)}
    assert not left, f"still running after Ctrl-C: {left}"
    busy = [port for port in ports if _listening(port)]
    assert not busy, f"ports still accepting connections after Ctrl-C: {busy}"
    assert (up.data / "services" / "pg" / "PG_VERSION").exists(), "make up must keep its data"
