"""The fake LiveKit is faithful: the real ``livekit-api`` client and webhook receiver accept it,
and its egress pushes real RTMP audio that an :class:`RtmpIngest` decodes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from livekit import api

from tests.fakes.livekit import FIXTURE, FakeLiveKit, encode_flv, redact_stream_key
from transcription.live.ingest import IngestStatus, PortPool, RtmpIngest
from transcription.live.ingest.ffmpeg import end_process, free_loopback_port

KEY, SECRET = "test-key", "test-secret-0123456789abcdef-0123456789"
OTHER_SECRET = "some-other-secret-0123456789-0123456789"
ROOM = "space-weekly-sync"


@pytest.fixture(scope="module")
def egress_flv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode_flv(FIXTURE, tmp_path_factory.mktemp("egress") / "egress.flv", seconds=8)


@pytest_asyncio.fixture
async def fake(egress_flv: Path) -> AsyncIterator[FakeLiveKit]:
    async with FakeLiveKit(api_key=KEY, api_secret=SECRET, audio=egress_flv) as server:
        yield server


@pytest_asyncio.fixture
async def lk(fake: FakeLiveKit) -> AsyncIterator[api.LiveKitAPI]:
    async with api.LiveKitAPI(fake.url, KEY, SECRET) as client:
        yield client


@pytest_asyncio.fixture
async def ingest() -> AsyncIterator[RtmpIngest]:
    rtmp = RtmpIngest(stream_key="egress-run-secret", ports=PortPool(47200, 47299))
    await rtmp.start()
    try:
        yield rtmp
    finally:
        await rtmp.stop()


def _request(url: str) -> api.RoomCompositeEgressRequest:
    return api.RoomCompositeEgressRequest(
        room_name=ROOM,
        audio_only=True,
        stream_outputs=[api.StreamOutput(protocol=api.StreamProtocol.RTMP, urls=[url])],
    )


class Receiver:
    """A tiny HTTP endpoint that records webhook bodies and Authorization headers."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Receiver:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/api/livekit/webhook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
        body = await reader.readexactly(int(headers["content-length"]))
        await self.received.put((body.decode(), headers.get("authorization", "")))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def next(self) -> tuple[str, api.WebhookEvent]:
        body, auth = await asyncio.wait_for(self.received.get(), 5)
        event = api.WebhookReceiver(api.TokenVerifier(KEY, SECRET)).receive(body, auth)
        return body, event


async def _first_audio(ingest: RtmpIngest, timeout: float) -> float:
    """Wait for the ingest's first PCM chunk; returns when it came (monotonic)."""
    chunks = ingest.chunks()
    await asyncio.wait_for(anext(chunks), timeout)
    return time.monotonic()


@pytest.mark.asyncio
async def test_egress_started_with_the_real_client_pushes_audio_to_the_ingest(
    fake: FakeLiveKit, lk: api.LiveKitAPI, ingest: RtmpIngest
) -> None:
    requested_at = time.monotonic()
    info = await lk.egress.start_room_composite_egress(_request(ingest.url()))
    first_audio_at = await _first_audio(ingest, timeout=10)
    print(f"egress start -> first PCM: {(first_audio_at - requested_at) * 1000:.0f} ms")

    assert info.egress_id.startswith("EG_")
    assert info.room_name == ROOM
    assert info.status == api.EgressStatus.EGRESS_STARTING
    assert info.room_composite.audio_only
    assert info.stream_results[0].url == redact_stream_key(ingest.url())
    assert "egress-run-secret" not in info.stream_results[0].url
    recorded = fake.requests[-1]
    assert recorded.method == "StartRoomCompositeEgress"
    assert isinstance(recorded.request, api.RoomCompositeEgressRequest)
    assert list(recorded.request.stream_outputs[0].urls) == [ingest.url()]
    assert fake.egresses[info.egress_id].info.status == api.EgressStatus.EGRESS_ACTIVE

    stopped = await lk.egress.stop_egress(api.StopEgressRequest(egress_id=info.egress_id))
    assert stopped.status == api.EgressStatus.EGRESS_ENDING
    for _ in range(100):
        if ingest.status is IngestStatus.WAITING:
            break
        await asyncio.sleep(0.05)
    assert ingest.status is IngestStatus.WAITING, "the push stopped"
    heard = ingest.audio_seconds
    await asyncio.sleep(1.0)
    assert ingest.audio_seconds - heard < 0.3
    listed = await lk.egress.list_egress(api.ListEgressRequest(room_name=ROOM))
    assert [item.status for item in listed.items] == [api.EgressStatus.EGRESS_COMPLETE]
    active = await lk.egress.list_egress(api.ListEgressRequest(room_name=ROOM, active=True))
    assert list(active.items) == []


@pytest.mark.asyncio
async def test_egress_delay_holds_the_first_audio_back(
    fake: FakeLiveKit, lk: api.LiveKitAPI, ingest: RtmpIngest
) -> None:
    fake.egress_delay = 1.5
    requested_at = time.monotonic()
    await lk.egress.start_room_composite_egress(_request(ingest.url()))
    delay = await _first_audio(ingest, timeout=10) - requested_at
    assert 1.5 <= delay < 1.5 + 1.5


@pytest.mark.asyncio
async def test_the_egress_reconnects_when_the_listener_drops_like_real_egress(
    fake: FakeLiveKit, lk: api.LiveKitAPI, ingest: RtmpIngest
) -> None:
    info = await lk.egress.start_room_composite_egress(_request(ingest.url()))
    await _first_audio(ingest, timeout=10)
    killed = ingest.ffmpeg_pid
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    heard = ingest.audio_seconds
    deadline = time.monotonic() + 10
    while ingest.audio_seconds < heard + 1.0:
        assert time.monotonic() < deadline, "audio did not resume"
        await asyncio.sleep(0.05)
    egress = fake.egresses[info.egress_id]
    assert egress.pushes >= 2 and egress.info.stream_results[0].retries >= 1
    assert egress.info.status == api.EgressStatus.EGRESS_ACTIVE
    assert ingest.restarts >= 1 and ingest.publishers == 2


@pytest.mark.asyncio
async def test_an_unreachable_rtmp_url_fails_the_egress_after_the_retry_window(
    fake: FakeLiveKit, lk: api.LiveKitAPI
) -> None:
    fake.retry_window = 1.0
    async with Receiver() as receiver:
        fake.webhook_url = receiver.url
        url = f"rtmp://127.0.0.1:{free_loopback_port()}/live/nobody-listens"
        info = await lk.egress.start_room_composite_egress(_request(url))
        events = [(await receiver.next())[1] for _ in range(3)]
    assert [e.event for e in events] == ["egress_started", "egress_updated", "egress_ended"]
    ended = events[-1].egress_info
    assert ended.egress_id == info.egress_id
    assert ended.status == api.EgressStatus.EGRESS_FAILED and ended.error
    assert ended.stream_results[0].status == api.StreamInfo.Status.FAILED


@pytest.mark.asyncio
async def test_forced_twirp_errors_raise_server_error_with_their_code(
    fake: FakeLiveKit, lk: api.LiveKitAPI
) -> None:
    fake.fail_next(code="resource_exhausted", msg="no egress instance available")
    with pytest.raises(api.ServerError) as failed:
        await lk.egress.start_room_composite_egress(_request("rtmp://127.0.0.1:1/live/k"))
    assert failed.value.code == "resource_exhausted" and failed.value.status == 429
    assert failed.value.message == "no egress instance available"

    fake.fail_next(code="unavailable")  # a 5xx: the client does not retry a self-hosted server
    with pytest.raises(api.ServerError) as failed:
        await lk.egress.start_room_composite_egress(_request("rtmp://127.0.0.1:1/live/k"))
    assert (failed.value.code, failed.value.status) == ("unavailable", 503)
    assert [r.status for r in fake.requests] == [429, 503]


@pytest.mark.asyncio
async def test_api_errors_match_livekit(fake: FakeLiveKit, lk: api.LiveKitAPI) -> None:
    with pytest.raises(api.ServerError) as failed:
        await lk.egress.stop_egress(api.StopEgressRequest(egress_id="EG_missing"))
    assert (failed.value.code, failed.value.status) == ("not_found", 404)

    with pytest.raises(api.ServerError) as failed:
        await lk.egress.start_room_composite_egress(_request("rtmp://127.0.0.1:1/no-key"))
    assert failed.value.code == "invalid_argument"

    async with api.LiveKitAPI(fake.url, KEY, OTHER_SECRET) as wrong:
        with pytest.raises(api.ServerError) as failed:
            await wrong.egress.list_egress(api.ListEgressRequest())
    assert (failed.value.code, failed.value.status) == ("unauthenticated", 401)

    joiner = (
        api.AccessToken(KEY, SECRET)
        .with_identity("user-7")
        .with_grants(api.VideoGrants(room_join=True, room=ROOM))
    )
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{fake.url}/twirp/livekit.Egress/ListEgress",
            content=api.ListEgressRequest().SerializeToString(),
            headers={
                "Authorization": f"Bearer {joiner.to_jwt()}",
                "Content-Type": "application/protobuf",
            },
        )
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


@pytest.mark.asyncio
async def test_stopping_an_ended_egress_is_a_failed_precondition(
    fake: FakeLiveKit, lk: api.LiveKitAPI
) -> None:
    info = await lk.egress.start_room_composite_egress(_request("rtmp://127.0.0.1:1/live/k"))
    ended = await fake.end_egress(
        info.egress_id, status=api.EgressStatus.EGRESS_LIMIT_REACHED, error="max duration"
    )
    assert ended.status == api.EgressStatus.EGRESS_LIMIT_REACHED
    with pytest.raises(api.ServerError) as failed:
        await lk.egress.stop_egress(api.StopEgressRequest(egress_id=info.egress_id))
    assert failed.value.code == "failed_precondition"


@pytest.mark.asyncio
async def test_webhooks_are_signed_like_livekit_and_tampering_is_detected(
    fake: FakeLiveKit,
) -> None:
    async with Receiver() as receiver:
        for name in ("participant_joined", "participant_left"):
            status = await fake.send_webhook(
                receiver.url,
                fake.event(name, room_name=ROOM, identity="user-7", participant_name="Max"),
            )
            assert status == 200
            body, event = await receiver.next()
            assert event.event == name
            assert (event.room.name, event.participant.identity) == (ROOM, "user-7")
            assert event.participant.name == "Max" and event.created_at > 0

        await fake.send_webhook(receiver.url, fake.event("room_finished", room_name=ROOM))
        body, auth = await asyncio.wait_for(receiver.received.get(), 5)
    verifier = api.WebhookReceiver(api.TokenVerifier(KEY, SECRET))
    assert verifier.receive(body, auth).event == "room_finished"
    assert not auth.startswith("Bearer")
    with pytest.raises(Exception, match="hash mismatch"):
        verifier.receive(body.replace(ROOM, "another-room"), auth)
    with pytest.raises(Exception):  # noqa: B017 - PyJWT's error for a bad signature
        api.WebhookReceiver(
            api.TokenVerifier(KEY, "some-other-secret-0123456789-0123456789")
        ).receive(body, auth)


@pytest.mark.asyncio
async def test_egress_webhooks_follow_the_egress_through_its_life(
    fake: FakeLiveKit, lk: api.LiveKitAPI
) -> None:
    async with Receiver() as receiver:
        fake.webhook_url = receiver.url
        info = await lk.egress.start_room_composite_egress(_request("rtmp://127.0.0.1:1/live/k"))
        started = (await receiver.next())[1]
        updated = (await receiver.next())[1]
        await fake.end_egress(
            info.egress_id, status=api.EgressStatus.EGRESS_ABORTED, error="source closed"
        )
        ended = (await receiver.next())[1]
        await fake.webhooks_delivered()
    assert started.event == "egress_started"
    assert started.egress_info.status == api.EgressStatus.EGRESS_STARTING
    assert updated.event == "egress_updated"
    assert updated.egress_info.status == api.EgressStatus.EGRESS_ACTIVE
    assert ended.event == "egress_ended"
    assert ended.egress_info.status == api.EgressStatus.EGRESS_ABORTED
    assert ended.egress_info.error == "source closed"
    assert {e.egress_info.egress_id for e in (started, updated, ended)} == {info.egress_id}
    assert [status for _, _, status in fake.webhooks] == [200, 200, 200]


@pytest.mark.asyncio
async def test_runs_standalone_for_demos(egress_flv: Path) -> None:
    port = free_loopback_port()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.fakes.livekit", "--port", str(port)),
        *("--key", KEY, "--secret", SECRET, "--audio", str(egress_flv)),
        cwd=Path(__file__).resolve().parents[2],
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert f"http://127.0.0.1:{port}" in line.decode()
        async with api.LiveKitAPI(f"http://127.0.0.1:{port}", KEY, SECRET) as client:
            listed = await client.egress.list_egress(api.ListEgressRequest())
        assert list(listed.items) == []
    finally:
        await end_process(proc)
