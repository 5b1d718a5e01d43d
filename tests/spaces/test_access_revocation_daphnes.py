"""Access ends at once in distributed mode too: a removed member's sockets on several Daphnes.

Two real Daphne processes on the Redis channel layer, as ``make up`` runs them; the member has
a transcript and a signalling socket on each. The removal happens in this process (as the web
request that removes them would, on any Daphne): every one of those sockets must be told and
closed with 4003 within a second, and the host's sockets on the same Daphnes stay open.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from sessions_app.services import session_end
from sessions_app.tokens import transcription_token_create
from spaces.services import member_remove
from tests.faults.sockets import Daphne, daphne

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

WITHIN = 1.0


@pytest.fixture(scope="module")
def daphnes(django_db_setup, django_db_blocker) -> Iterator[list[Daphne]]:
    with (
        django_db_blocker.unblock(),
        daphne("revocation-daphne-a", {}) as a,
        daphne("revocation-daphne-b", {}) as b,
    ):
        yield [a, b]


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


async def _open(server: Daphne, path: str) -> ClientConnection:
    origin = f"http://127.0.0.1:{server.port}"
    ws = await connect(server.ws + path, origin=origin, open_timeout=10, close_timeout=2)
    first = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert first["type"] in ("connected", "welcome"), first
    return ws


async def _ended_with(ws: ClientConnection, seconds: float) -> tuple[list[str], int | None]:
    """The message types received until the close, and its code (None: still open)."""
    kinds: list[str] = []
    try:
        async with asyncio.timeout(seconds):
            async for raw in ws:
                kinds.append(json.loads(raw)["type"])
    except TimeoutError:
        return kinds, None
    except ConnectionClosed:
        pass
    return kinds, ws.close_code


async def _sockets(servers: list[Daphne], slug: str, token: str) -> list[ClientConnection]:
    """A transcript and a signalling socket on each Daphne."""
    sockets = []
    for server in servers:
        sockets.append(await _open(server, f"/ws/sessions/{slug}/transcript/?token={token}"))
    # One signalling socket per person (a second would take over the first's mesh slot).
    sockets.append(await _open(servers[1], f"/ws/sessions/{slug}/signal/?token={token}"))
    return sockets


def test_removal_closes_the_members_sockets_on_every_daphne_within_a_second(
    daphnes, owner, member, space, video_session
):
    slug = video_session.slug
    member_token = transcription_token_create(session_slug=slug, identity=member.identity)
    owner_token = transcription_token_create(session_slug=slug, identity=owner.identity)
    membership = space.memberships.get(user=member)

    async def scenario() -> tuple[list[tuple[list[str], int | None]], float, list]:
        theirs = await _sockets(daphnes, slug, member_token)
        ours = await _sockets(daphnes, slug, owner_token)
        await asyncio.sleep(0.3)  # every socket has joined its groups
        started = time.monotonic()
        await asyncio.to_thread(member_remove, space=space, member=membership, by=owner)
        ended = await asyncio.gather(*(_ended_with(ws, WITHIN + 1) for ws in theirs))
        elapsed = time.monotonic() - started
        still = await asyncio.gather(*(_ended_with(ws, 0.3) for ws in ours))
        for ws in ours:
            await ws.close()
        return ended, elapsed, still

    ended, elapsed, still = asyncio.run(scenario())
    for kinds, code in ended:
        assert code == 4003, ended
        assert kinds[-1] == "access_revoked", ended
    assert elapsed < WITHIN + 0.5, f"closed after {elapsed:.2f} s"
    assert all(code is None for _, code in still), f"the host's sockets were closed: {still}"


def test_ending_the_session_closes_every_socket_on_every_daphne(
    daphnes, owner, member, video_session
):
    slug = video_session.slug
    token = transcription_token_create(session_slug=slug, identity=member.identity)

    async def scenario() -> list[tuple[list[str], int | None]]:
        sockets = await _sockets(daphnes, slug, token)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(session_end, session=video_session, by=owner)
        return await asyncio.gather(*(_ended_with(ws, WITHIN + 1) for ws in sockets))

    for kinds, code in asyncio.run(scenario()):
        assert code == 4004 and kinds[-1] == "session_ended", (kinds, code)
