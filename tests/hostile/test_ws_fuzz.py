"""WebSocket fuzzer: hostile clients against a real Daphne, well-behaved ones beside them.

Both session sockets (``/ws/sessions/<slug>/transcript/``, ``/ws/sessions/<slug>/signal/``)
get random JSON (seeded), wrong types, unknown types, deeply nested and oversized JSON,
invalid UTF-8, binary garbage of every awkward size, floods above the rate limits, bad
tokens, paths and slugs, and a foreign Origin. Every hostile connection must end with the close
code that ``docs/transcript-protocol.md`` / ``docs/mesh-protocol.md`` document for it, while a
control client in the same session keeps getting events and pongs, and the server process stays
up, answers HTTP and logs no traceback.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import websockets
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sessions_app.tokens import transcription_token_create
from tests.factories import SpaceMemberFactory, UserFactory
from tests.live import DAPHNE, ROOT, child_env, child_process, free_port, wait_for_port
from transcription.live import broadcast

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SEED = 20261122
RANDOM_CASES = 60
"""Random JSON messages per route, each on its own connection (every one ends it)."""
CLOSE_TIMEOUT = 5.0


@dataclass
class Server:
    port: int
    process: Any
    log: Any

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def origin(self) -> str:
        """The origin of this server's own pages: scheme, host and port must all match."""
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def daphne(django_db_setup, django_db_blocker) -> Iterator[Server]:
    port = free_port()
    log = ROOT / "artifacts" / "hostile-ws-daphne.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    with django_db_blocker.unblock():
        env = child_env(MESH_MAX_PARTICIPANTS="50")
    args = [*DAPHNE, "-b", "127.0.0.1", "-p", str(port), "rooms.asgi:application"]
    with child_process(args, env=env, log=log) as process:
        wait_for_port(port, timeout=30, process=process)
        yield Server(port=port, process=process, log=log)


@dataclass
class World:
    slug: str
    session_pk: int
    member_token: str
    owner_token: str
    second_token: str
    """A second member's: the mesh control's other page (one mesh slot per person)."""
    outsider_token: str
    foreign_token: str
    """A valid token of the member, for another session of the same space."""
    forged: dict[str, str]
    """The member's token made invalid: expired, for another audience, unsigned."""


@pytest.fixture
def world(video_session, owner, member, space) -> World:
    from tests.factories import VideoSessionFactory

    other = VideoSessionFactory(space=space, created_by=owner, title="Other")
    outsider = UserFactory(email="ws-outsider@example.com")
    second = UserFactory(email="ws-second@example.com")
    SpaceMemberFactory(space=space, user=second)
    slug = video_session.slug
    good = transcription_token_create(session_slug=slug, identity=member.identity)
    claims = jwt.decode(good, options={"verify_signature": False})
    secret = django_settings.TRANSCRIPTION_JWT_SECRET
    forged = {
        "expired": jwt.encode(
            {**claims, "iat": claims["iat"] - 7200, "exp": claims["iat"] - 3600}, secret
        ),
        "audience": jwt.encode({**claims, "aud": "rooms.other"}, secret),
        "unsigned": jwt.encode(claims, None, algorithm="none"),
    }
    return World(
        slug=slug,
        session_pk=video_session.pk,
        member_token=transcription_token_create(session_slug=slug, identity=member.identity),
        owner_token=transcription_token_create(session_slug=slug, identity=owner.identity),
        second_token=transcription_token_create(session_slug=slug, identity=second.identity),
        outsider_token=transcription_token_create(session_slug=slug, identity=outsider.identity),
        foreign_token=transcription_token_create(session_slug=other.slug, identity=member.identity),
        forged=forged,
    )


# --- a client that records how its connection ended --------------------------------------------


async def _open(server: Server, path: str, *, origin: str | None = None):
    return await websockets.connect(
        server.url(path),
        origin=origin or server.origin,
        max_size=None,
        compression=None,
        proxy=None,
        open_timeout=10,
        close_timeout=2,
    )


DROPPED = 1006
"""What a client reports when the server drops the TCP connection without a close frame."""


async def _close_code(ws) -> int | None:
    """Read until the server closes: the close code it sent, ``DROPPED`` when it closed the
    connection without one, None when it kept the connection open."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else DROPPED
    except TimeoutError:
        await ws.close()
        return None


async def _hostile(server: Server, path: str, frames: list[tuple[str, Any]]) -> int | None:
    """Connect, send ``frames`` (("text", str) / ("bytes", bytes) / ("raw_text", bytes)),
    return the close code the server answers with."""
    ws = await _open(server, path)
    try:
        for kind, payload in frames:
            if kind == "text":
                await ws.send(payload)
            elif kind == "raw_text":
                await ws.send(payload, text=True)  # bytes as a text frame, unchecked
            else:
                await ws.send(payload)
    except ConnectionClosed:
        pass
    return await _close_code(ws)


# --- control clients ---------------------------------------------------------------------------


class TranscriptControl:
    """A member's page on the transcript socket: must keep getting events and pongs."""

    def __init__(self, ws, session_pk: int):
        self.ws, self.session_pk, self.seq = ws, session_pk, 0

    async def check(self) -> None:
        self.seq += 1
        utterance = f"control-{self.seq}"
        payload = {
            "type": "transcript",
            "utterance_id": utterance,
            "text": "still here",
            "is_final": False,
            "speaker_identity": None,
            "speaker_name": None,
            "start": 0.0,
            "end": 1.0,
            "language": "en",
        }
        await get_channel_layer().group_send(
            broadcast.session_group(self.session_pk),
            {"type": "transcript.event", "payload": payload},
        )
        await self.ws.send(json.dumps({"type": "ping"}))
        seen = set()
        async with asyncio.timeout(5):
            while seen != {"pong", utterance}:
                message = json.loads(await self.ws.recv())
                if message["type"] == "pong":
                    seen.add("pong")
                elif message.get("utterance_id") == utterance:
                    seen.add(utterance)


class MeshControl:
    """Two members' pages on the signalling socket: relays between them must keep working."""

    def __init__(self, a, b, b_peer: str):
        self.a, self.b, self.b_peer, self.seq = a, b, b_peer, 0

    async def check(self) -> None:
        self.seq += 1
        sdp = f"v=0 control-{self.seq}"
        await self.a.send(json.dumps({"type": "offer", "to": self.b_peer, "sdp": sdp}))
        await self.a.send(json.dumps({"type": "ping"}))
        got_offer = got_pong = False
        async with asyncio.timeout(5):
            while not (got_offer and got_pong):
                if not got_offer:
                    message = json.loads(await self.b.recv())
                    got_offer = message.get("type") == "offer" and message.get("sdp") == sdp
                else:
                    got_pong = json.loads(await self.a.recv()).get("type") == "pong"


async def _transcript_control(server: Server, world: World) -> TranscriptControl:
    ws = await _open(server, f"/ws/sessions/{world.slug}/transcript/?token={world.owner_token}")
    types = [json.loads(await ws.recv())["type"] for _ in range(3)]
    assert types == ["connected", "history", "transcription_status"]
    return TranscriptControl(ws, world.session_pk)


async def _mesh_control(server: Server, world: World) -> MeshControl:
    path = f"/ws/sessions/{world.slug}/signal/?token="
    a = await _open(server, path + world.owner_token)
    assert json.loads(await a.recv())["type"] == "welcome"
    b = await _open(server, path + world.second_token)
    welcome = json.loads(await b.recv())
    assert welcome["type"] == "welcome"
    assert json.loads(await a.recv())["type"] == "peer_joined"
    return MeshControl(a, b, welcome["peer_id"])


# --- hostile cases -----------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["null", "bool", "int", "float", "str", "list", "dict"]
    kind = rng.choice(kinds if depth < 4 else kinds[:5])
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, -1, 2**31, 2**63, -(2**70), rng.randint(-1000, 1000)])
    if kind == "float":
        return rng.choice([0.5, -1e308, 1e-300, rng.uniform(-1e6, 1e6)])
    if kind == "str":
        alphabet = 'ab\u00e9\u4e2d\U0001f600\x00\n"\\/'
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["type", "to", "sdp", "speakers", "candidate", "audio", "video", "x", ""]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _random_message(rng: random.Random, known_types: list[str]) -> dict[str, Any]:
    """A random object whose ``type`` is a known one with random fields, or random."""
    message = _random_json(rng, 1) if rng.random() < 0.3 else {}
    if not isinstance(message, dict):
        return {"type": message}
    message["type"] = rng.choice(known_types) if rng.random() < 0.7 else _random_json(rng, 3)
    return message


def _transcript_valid(message: Any) -> bool:
    """The documented client messages of the transcript socket."""
    if not isinstance(message, dict):
        return False
    kind = message.get("type")
    if kind == "ping":
        return True
    if kind == "active_speakers":
        speakers = message.get("speakers")
        return (
            isinstance(speakers, list)
            and len(speakers) <= 50
            and all(isinstance(s, str) and 0 < len(s) <= 64 for s in speakers)
        )
    return False


def _mesh_valid(message: Any) -> bool:
    """The documented client messages of the signalling socket ("leave" aside: it closes)."""
    if not isinstance(message, dict):
        return False
    kind = message.get("type")
    if kind == "ping":
        return True
    if kind == "media":
        return all(isinstance(message.get(k), bool) for k in ("audio", "video"))
    to = message.get("to")
    if not isinstance(to, str) or not 0 < len(to) <= 32:
        return False
    if kind in ("offer", "answer"):
        sdp = message.get("sdp")
        return isinstance(sdp, str) and 0 < len(sdp) <= 32 * 1024
    if kind == "ice":
        c = message.get("candidate")
        if c is None:
            return True
        return (
            isinstance(c, dict)
            and not set(c) - {"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"}
            and isinstance(c.get("candidate"), str)
            and len(c["candidate"]) <= 2048
            and (
                c.get("sdpMid") is None or (isinstance(c["sdpMid"], str) and len(c["sdpMid"]) <= 64)
            )
            and (
                c.get("sdpMLineIndex") is None
                or (type(c["sdpMLineIndex"]) is int and 0 <= c["sdpMLineIndex"] < 64)
            )
            and (
                c.get("usernameFragment") is None
                or (isinstance(c["usernameFragment"], str) and len(c["usernameFragment"]) <= 256)
            )
        )
    return False


PCM_FRAME = b"\x00\x01" * 640  # 40 ms of 16 kHz PCM16


def _transcript_cases() -> list[tuple[str, list[tuple[str, Any]], int]]:
    """(name, frames, documented close code)."""
    t = "text"
    return [
        ("not json", [(t, "hello")], 4002),
        ("empty text", [(t, "")], 4002),
        ("json array", [(t, "[1, 2]")], 4002),
        ("json string", [(t, '"ping"')], 4002),
        ("json null", [(t, "null")], 4002),
        ("no type", [(t, "{}")], 4002),
        ("unknown type", [(t, '{"type": "sudo"}')], 4002),
        ("type is a number", [(t, '{"type": 1}')], 4002),
        ("type is a list", [(t, '{"type": ["ping"]}')], 4002),
        ("speakers not a list", [(t, '{"type": "active_speakers", "speakers": "a"}')], 4002),
        ("speaker not a string", [(t, '{"type": "active_speakers", "speakers": [1]}')], 4002),
        ("empty speaker", [(t, '{"type": "active_speakers", "speakers": [""]}')], 4002),
        (
            "too many speakers",
            [(t, json.dumps({"type": "active_speakers", "speakers": ["a"] * 51}))],
            4002,
        ),
        (
            "speaker too long",
            [(t, json.dumps({"type": "active_speakers", "speakers": ["a" * 65]}))],
            4002,
        ),
        ("text over 4 KiB", [(t, json.dumps({"type": "ping", "pad": "x" * 4200}))], 4002),
        ("4 KiB of multi-byte text", [(t, "\u4e2d" * 1400)], 4002),
        ("deeply nested list", [(t, _nested(2000))], 4002),
        ("deeply nested object", [(t, '{"a":' * 800 + "1" + "}" * 800)], 4002),
        ("huge number", [(t, "9" * 4000)], 4002),
        ("NaN literal", [(t, '{"type": NaN}')], 4002),
        ("lone surrogate", [(t, '{"type": "\\ud800"}')], 4002),
        ("invalid utf-8 text frame", [("raw_text", b'{"type": "\xff\xfe"}')], DROPPED),
        ("empty binary", [("bytes", b"")], 4009),
        ("1-byte binary", [("bytes", b"\x00")], 4009),
        ("99-byte binary", [("bytes", b"\x01" * 99)], 4009),
        ("odd-length binary", [("bytes", b"\x01" * 1281)], 4009),
        ("64 KiB + 2 binary", [("bytes", b"\x01" * (64 * 1024 + 2))], 4009),
        (
            "1 MiB + 2 binary (over the server's frame limit)",
            [("bytes", b"\0" * (2**20 + 2))],
            DROPPED,
        ),
        ("ok frame then garbage", [("bytes", PCM_FRAME), ("bytes", b"\xff" * 7)], 4009),
        ("audio flood", [("bytes", PCM_FRAME)] * 400, 4008),
    ]


def _mesh_cases() -> list[tuple[str, list[tuple[str, Any]], int]]:
    t = "text"
    return [
        ("not json", [(t, "hello")], 4002),
        ("empty text", [(t, "")], 4002),
        ("json array", [(t, "[]")], 4002),
        ("unknown type", [(t, '{"type": "sudo"}')], 4002),
        ("type is a number", [(t, '{"type": 7}')], 4002),
        ("media not booleans", [(t, '{"type": "media", "audio": 1, "video": "yes"}')], 4002),
        ("offer without to", [(t, '{"type": "offer", "sdp": "v=0"}')], 4002),
        ("offer to a number", [(t, '{"type": "offer", "to": 5, "sdp": "v=0"}')], 4002),
        ("offer with empty sdp", [(t, '{"type": "offer", "to": "p", "sdp": ""}')], 4002),
        ("to too long", [(t, json.dumps({"type": "answer", "to": "p" * 33, "sdp": "v"}))], 4002),
        (
            "sdp over 32 KiB",
            [(t, json.dumps({"type": "offer", "to": "p", "sdp": "v" * (32 * 1024 + 1)}))],
            4002,
        ),
        ("ice candidate a string", [(t, '{"type": "ice", "to": "p", "candidate": "x"}')], 4002),
        (
            "ice candidate extra key",
            [(t, '{"type": "ice", "to": "p", "candidate": {"candidate": "", "evil": 1}}')],
            4002,
        ),
        (
            "ice mline index a bool",
            [(t, '{"type":"ice","to":"p","candidate":{"candidate":"","sdpMLineIndex":true}}')],
            4002,
        ),
        ("text over 64 KiB", [(t, json.dumps({"type": "ping", "pad": "x" * 66000}))], 4002),
        ("deeply nested list", [(t, _nested(30000))], 4002),
        ("deeply nested object", [(t, '{"a":' * 5000 + "1" + "}" * 5000)], 4002),
        ("huge number", [(t, "9" * 60000)], 4002),
        ("invalid utf-8 text frame", [("raw_text", b'{"type": "\xc3\x28"}')], DROPPED),
        ("binary frame", [("bytes", b"\x00\x01\x02")], 4002),
        ("empty binary frame", [("bytes", b"")], 4002),
        ("huge binary frame", [("bytes", b"\0" * (2**20 + 2))], DROPPED),
        ("message flood", [(t, '{"type": "media", "audio": true, "video": true}')] * 300, 4008),
    ]


def _random_cases(
    rng: random.Random, known: list[str], valid, n: int
) -> list[tuple[str, list[tuple[str, Any]], int]]:
    """``n`` random messages that the protocol does not allow (valid ones are skipped: they
    would not end the connection)."""
    cases = []
    while len(cases) < n:
        message = _random_message(rng, known)
        if valid(message):
            continue
        cases.append((f"random {json.dumps(message)[:80]}", [("text", json.dumps(message))], 4002))
    return cases


async def _run_cases(server, path, cases, control) -> list[str]:
    """Every case on its own connection; the control client is checked after each. Returns
    the mismatches (name, expected, got)."""
    problems = []
    for name, frames, expected in cases:
        got = await _hostile(server, path, frames)
        if got != expected:
            problems.append(f"{name}: expected close {expected}, got {got}")
        await control.check()
    return problems


async def _handshake_status(server: Server, path: str, origin: str | None = None) -> int | str:
    """The HTTP status of a refused handshake, or the close code after an accepted one."""
    try:
        ws = await _open(server, path, origin=origin)
    except InvalidStatus as refused:
        return refused.response.status_code
    return await _close_code(ws)


def _server_healthy(server: Server) -> None:
    import http.client

    assert server.process.poll() is None, "Daphne died"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/accounts/login/", headers={"Host": "127.0.0.1"})
    assert conn.getresponse().status == 200
    log = server.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert "Exception inside application" not in log, log[-3000:]


# --- tests -------------------------------------------------------------------------------------


def test_transcript_socket_closes_hostile_clients_with_documented_codes(daphne, world):
    path = f"/ws/sessions/{world.slug}/transcript/?token={world.member_token}"
    rng = random.Random(SEED)
    cases = _transcript_cases() + _random_cases(
        rng, ["ping", "active_speakers"], _transcript_valid, RANDOM_CASES
    )

    async def scenario() -> list[str]:
        control = await _transcript_control(daphne, world)
        await control.check()
        problems = await _run_cases(daphne, path, cases, control)
        await control.check()
        await control.ws.close()
        return problems

    started = time.monotonic()
    problems = asyncio.run(scenario())
    print(f"transcript: {len(cases)} hostile connections in {time.monotonic() - started:.1f} s")
    assert problems == [], "\n".join(problems)
    _server_healthy(daphne)


def test_signal_socket_closes_hostile_clients_with_documented_codes(daphne, world):
    path = f"/ws/sessions/{world.slug}/signal/?token={world.member_token}"
    rng = random.Random(SEED + 1)
    cases = _mesh_cases() + _random_cases(
        rng, ["ping", "media", "offer", "answer", "ice"], _mesh_valid, RANDOM_CASES
    )

    async def scenario() -> list[str]:
        control = await _mesh_control(daphne, world)
        await control.check()
        problems = await _run_cases(daphne, path, cases, control)
        await control.check()
        await control.a.close()
        await control.b.close()
        return problems

    started = time.monotonic()
    problems = asyncio.run(scenario())
    print(f"signal: {len(cases)} hostile connections in {time.monotonic() - started:.1f} s")
    assert problems == [], "\n".join(problems)
    _server_healthy(daphne)


@pytest.mark.parametrize("route", ["transcript", "signal", "edits"])
def test_strangers_bad_tokens_and_bad_paths_get_documented_answers(daphne, world, route):
    base = f"/ws/sessions/{world.slug}/{route}/"
    own = daphne.origin
    expectations = {
        "no token, no cookie": (base, own, 4001),
        "garbage token": (base + "?token=not.a.jwt", own, 4001),
        "empty token": (base + "?token=", own, 4001),
        **{
            f"{kind} token": (base + f"?token={token}", own, 4001)
            for kind, token in world.forged.items()
        },
        "token of another session": (base + f"?token={world.foreign_token}", own, 4003),
        "outsider's token": (base + f"?token={world.outsider_token}", own, 4003),
        "no such session": (
            f"/ws/sessions/nope-0000/{route}/?token={world.member_token}",
            own,
            4003,
        ),
        "foreign origin": (base + f"?token={world.member_token}", "https://evil.example", 403),
        "another port of our host": (
            base + f"?token={world.member_token}",
            "http://127.0.0.1:9999",
            403,
        ),
        "our host without its port": (
            base + f"?token={world.member_token}",
            "http://127.0.0.1",
            403,
        ),
        "https page of our host": (
            base + f"?token={world.member_token}",
            f"https://127.0.0.1:{daphne.port}",
            403,
        ),
        "upper-case slug": (f"/ws/sessions/{world.slug.upper()}/{route}/", own, 403),
        "slug too long": (f"/ws/sessions/{'a' * 33}/{route}/", own, 403),
        "dot-dot slug": (f"/ws/sessions/../{route}/", own, 403),
        "unknown route": (f"/ws/sessions/{world.slug}/admin/", own, 403),
    }

    async def scenario() -> dict[str, int | str]:
        return {
            name: await _handshake_status(daphne, path, origin)
            for name, (path, origin, _) in expectations.items()
        }

    answers = asyncio.run(scenario())
    assert answers == {name: expected for name, (_, _, expected) in expectations.items()}
    _server_healthy(daphne)
