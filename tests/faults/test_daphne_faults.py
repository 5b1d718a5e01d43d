"""A Daphne dies (kill -9) while transcript clients are connected to it, in the distributed
topology: the run executes in a Celery ingest worker, two Daphnes share Redis. Its clients
reconnect to the other Daphne (as through the balancer) and resync from ``history``; the run
itself never notices. Every final is stored once and every page ends up showing each once."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sessions_app.tokens import transcription_token_create
from tests.faults.sockets import ResyncingClient, daphne
from tests.transcription.server_conftest import (
    Stack,
    join_session,
    run_row,
    single,
    start_server_run,
    stop_run,
    stored_finals,
    wait_until,
)
from transcription.models import TranscriptionRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _path(slug: str, user: Any) -> str:
    token = transcription_token_create(session_slug=slug, identity=user.identity)
    return f"/ws/sessions/{slug}/transcript/?token={token}"


async def test_kill_9_of_a_daphne_moves_its_clients_to_the_other_which_resyncs_them(
    server_mode: Stack, owner: Any, member: Any, owner_api: Any, video_session: Any, watch: Any
) -> None:
    stack = server_mode
    slug = video_session.slug
    await join_session(video_session, owner, member)
    await watch(owner, slug, speakers=[owner.identity])
    with daphne("faults-daphne-a", stack.env) as a, daphne("faults-daphne-b", stack.env) as b:
        servers = [a.ws, b.ws]
        # Pages on A wait 2-4 s before reconnecting, so they miss finals that history must fill.
        on_a = [ResyncingClient(_path(slug, member), servers, backoff=4.0) for _ in range(2)]
        on_b = [ResyncingClient(_path(slug, member), servers) for _ in range(2)]
        clients = on_a + on_b
        for client in on_a:
            client.start(first=0)
        for client in on_b:
            client.start(first=1)
        try:
            await wait_until(
                lambda: all(c.connections for c in clients), timeout=30, what="pages connected"
            )
            run_id = await start_server_run(owner_api, slug)
            await wait_until(
                lambda: all(len(c.finals) >= 3 for c in clients), timeout=40, what="finals"
            )

            a.process.kill()
            killed_at = time.monotonic()
            await wait_until(
                lambda: all(len(c.connections) == 2 for c in on_a),
                timeout=30,
                what="A's pages to reconnect to B",
            )
            reconnect_seconds = time.monotonic() - killed_at
            now = max(len(c.finals) for c in clients)
            await wait_until(
                lambda: all(len(c.finals) >= now + 3 for c in clients),
                timeout=30,
                what="finals after the kill",
            )
            await stop_run(owner_api, slug)
            await wait_until(
                lambda: all(c.has_status("STOPPED", run_id) for c in clients),
                timeout=30,
                what="every page to see the run STOPPED",
            )
        finally:
            for client in clients:
                await client.close()

    run = await run_row(run_id)
    assert run.status == TranscriptionRun.Status.STOPPED and run.attempts == 0
    (session,) = await stack.gladia_sessions()
    sent = single(session["finals"])
    stored = set(await stored_finals(video_session.pk))
    assert stored == sent, f"lost {sent - stored}, unexpected {stored - sent}"
    for client in on_a:
        assert client.connections == [a.ws, b.ws]
        assert client.history_added[1] >= 1, "history on reconnect gave what the page missed"
        assert set(client.finals) == sent, f"page missed {sent - set(client.finals)}"
    for client in on_b:
        assert client.connections == [b.ws], "B's pages were never disturbed"
        assert set(single(client.live_ids)) == sent
    print(f"pages of the killed Daphne back on the other after {reconnect_seconds:.2f} s")
