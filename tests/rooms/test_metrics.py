"""``/metrics``: who may read it, what moves when Rooms works, and multiprocess aggregation."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from django.test import Client as HttpClient
from prometheus_client.parser import text_string_to_metric_families

from rooms import metrics
from sessions_app.services import session_join
from tests.fakes.gladia import FakeGladia
from tests.live import ROOT
from tests.transcription.conftest import Client, frames, speech_pcm
from transcription.live import runner
from transcription.live.stt import open_stream
from transcription.models import TranscriptionUsage
from transcription.services import run_start, run_stop

TOKEN = "metrics-token-0123456789abcdef"


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Exposition text -> {(sample name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = HttpClient().get("/metrics")
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- access ---------------------------------------------------------------------------------


def test_metrics_from_loopback_are_served_in_prometheus_format():
    response = HttpClient().get("/metrics")  # the test client comes from 127.0.0.1

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    for name in (
        "rooms_websocket_connections",
        "rooms_transcription_runs_active",
        "rooms_audio_seconds_total",
        "rooms_finals_flush_seconds_bucket",
    ):
        assert name in text


def test_metrics_from_a_public_address_are_forbidden():
    response = HttpClient().get("/metrics", REMOTE_ADDR="203.0.113.7")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert b"rooms_" not in response.content


def test_metrics_through_the_load_balancer_need_the_token():
    # The balancer connects from loopback: a forwarded request must not count as local.
    response = HttpClient().get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.7")

    assert response.status_code == 403


def test_a_wrong_metrics_token_is_401(settings):
    settings.METRICS_TOKEN = TOKEN

    for header in ("Bearer wrong-token", f"Token {TOKEN}", "Bearer "):
        response = HttpClient().get("/metrics", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_is_refused_when_none_is_configured(settings):
    settings.METRICS_TOKEN = ""

    response = HttpClient().get("/metrics", HTTP_AUTHORIZATION="Bearer ")

    assert response.status_code == 401


def test_the_metrics_token_opens_metrics_from_anywhere(settings):
    settings.METRICS_TOKEN = TOKEN

    response = HttpClient().get(
        "/metrics",
        REMOTE_ADDR="203.0.113.7",
        HTTP_X_FORWARDED_FOR="203.0.113.7",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )

    assert response.status_code == 200
    assert b"rooms_audio_seconds_total" in response.content


def test_with_no_allowed_networks_even_loopback_needs_the_token(settings):
    settings.METRICS_ALLOWED_NETWORKS = []

    assert HttpClient().get("/metrics").status_code == 403


def test_an_allowed_network_is_let_in(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]

    assert HttpClient().get("/metrics", REMOTE_ADDR="10.2.3.4").status_code == 200
    assert HttpClient().get("/metrics", REMOTE_ADDR="11.2.3.4").status_code == 403


# --- values move with real work ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_transcribed_run_moves_the_metrics(
    settings, embedded_runner, owner, member, video_session
):
    settings.STT_PROVIDER = "local"
    runner.bind_loop(asyncio.get_running_loop())
    get = database_sync_to_async(scrape)
    before = await get()

    await database_sync_to_async(session_join)(session=video_session, user=owner)
    speaker, listener = Client(owner, video_session.slug), Client(member, video_session.slug)
    for client in (speaker, listener):
        await client.connect()
        for _ in range(3):  # connected, history, transcription_status
            await client.next()
    connected = await get()
    assert value(connected, "rooms_websocket_connections", route="transcript") == (
        value(before, "rooms_websocket_connections", route="transcript") + 2
    )

    run = await database_sync_to_async(run_start)(session=video_session, by=owner)
    await listener.until(
        lambda m: m.get("type") == "transcription_status" and m["status"] == "ACTIVE"
    )
    for i, frame in enumerate(frames(speech_pcm(seconds=7.0))):
        await speaker.comm.send_to(bytes_data=frame)
        if i % 5 == 4:
            await asyncio.sleep(0.2)  # real time
    await listener.until(lambda m: m.get("type") == "transcript" and m["is_final"], timeout=20)
    await asyncio.sleep(2 * settings.TRANSCRIPTION_FLUSH_SECONDS)  # one batcher round
    running = await get()
    assert value(running, "rooms_transcription_runs_active") == (
        value(before, "rooms_transcription_runs_active") + 1
    )
    assert (
        value(running, "rooms_audio_seconds_total") - value(before, "rooms_audio_seconds_total")
        >= 5.0
    )

    await database_sync_to_async(run_stop)(run=run)
    await listener.until(
        lambda m: m.get("type") == "transcription_status" and m["status"] == "STOPPED", timeout=30
    )
    for client in (speaker, listener):
        await client.disconnect()
    after = await get()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    live = [m for m in listener.messages if m.get("type") == "transcript"]
    finals = sum(1 for m in live if m["is_final"])
    usage = await database_sync_to_async(TranscriptionUsage.objects.get)(run=run)
    assert delta("rooms_websocket_connections", route="transcript") == 0
    assert delta("rooms_transcription_runs_active") == 0
    assert delta("rooms_transcript_events_total", kind="final") == usage.final_count == finals
    assert delta("rooms_transcript_events_total", kind="partial") == usage.partial_count > 0
    assert delta("rooms_audio_seconds_total") == pytest.approx(usage.duration_seconds, abs=0.01)
    assert delta("rooms_finals_flushed_total") >= finals
    assert delta("rooms_finals_flush_seconds_count") >= 1
    assert delta("rooms_billed_minutes_total") == usage.billed_minutes == 1
    assert Decimal(str(round(delta("rooms_transcription_cost_total"), 6))) == usage.total_cost


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_refused_socket_counts_an_error_and_no_connection(member, video_session):
    get = database_sync_to_async(scrape)
    before = await get()
    client = Client(member, video_session.slug)
    await client.connect()
    for _ in range(3):
        await client.next()
    await client.comm.send_to(text_data="not json")
    assert await client.close_code() == 4002
    await client.disconnect()
    after = await get()

    assert value(after, "rooms_errors_total", kind="ws_close_4002") == (
        value(before, "rooms_errors_total", kind="ws_close_4002") + 1
    )
    assert value(after, "rooms_websocket_connections", route="transcript") == value(
        before, "rooms_websocket_connections", route="transcript"
    )


@pytest_asyncio.fixture
async def fake_gladia() -> AsyncIterator[FakeGladia]:
    async with FakeGladia(api_key="good-key", script=["it was the best of times"]) as server:
        yield server


@pytest.mark.asyncio
async def test_a_dropped_gladia_socket_counts_one_reconnect(fake_gladia):
    reconnects = "rooms_stt_reconnects_total"
    before = value(parse(metrics.render().decode()), reconnects, provider="gladia")
    fake_gladia.fault(after_seconds=0.5, code=1011)
    stream = open_stream(
        "gladia",
        languages=["en"],
        api_key="good-key",
        api_url=fake_gladia.api_url,
        backoff_initial=0.02,
    )
    await stream.start()

    async def drain() -> None:
        async for _ in stream.events():
            pass

    reader = asyncio.create_task(drain())
    chunk = b"\x01\x00" * 640
    for _ in range(40):  # 1.6 s of audio
        await stream.send_audio(chunk)
        await asyncio.sleep(0.001)
    await stream.close()
    await asyncio.wait_for(reader, timeout=5)

    assert stream.reconnects == 1
    text = metrics.render().decode()
    assert value(parse(text), reconnects, provider="gladia") == before + 1


# --- several processes --------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    from rooms import metrics
    metrics.WEBSOCKET_CONNECTIONS.labels(route="transcript").inc()
    metrics.AUDIO_SECONDS.inc(float(sys.argv[1]))
    print("ready", flush=True)
    sys.stdin.read()
    """
)


@pytest.fixture
def multiproc_dir(tmp_path: Path, monkeypatch) -> Path:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    # Read at each scrape: this process's /metrics now reports what the children write there.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    return directory


def _child(directory: Path, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(seconds)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def test_multiprocess_mode_sums_processes_and_forgets_dead_ones_gauges(multiproc_dir):
    first, second = _child(multiproc_dir, 3.0), _child(multiproc_dir, 2.0)
    try:
        both = scrape()
        assert value(both, "rooms_audio_seconds_total") == 5.0
        assert value(both, "rooms_websocket_connections", route="transcript") == 2

        second.communicate("", timeout=20)  # a clean exit marks the process dead
        assert second.returncode == 0
        one = scrape()
        assert value(one, "rooms_audio_seconds_total") == 5.0, "counters outlive processes"
        assert value(one, "rooms_websocket_connections", route="transcript") == 1
        assert not list(multiproc_dir.glob(f"gauge_live*_{second.pid}.db"))

        first.send_signal(signal.SIGKILL)  # no clean-up of its own: the scrape reaps it
        first.wait(timeout=10)
        none = scrape()
        assert value(none, "rooms_audio_seconds_total") == 5.0
        assert value(none, "rooms_websocket_connections", route="transcript") == 0
        assert not list(multiproc_dir.glob(f"gauge_live*_{first.pid}.db"))
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,not-a-network", "is not a network"),
        ("METRICS_TOKEN", "short", "METRICS_TOKEN must be at least 16 characters"),
    ],
)
def test_bad_metrics_settings_stop_start_up(variable: str, value: str, message: str):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "rooms.settings", variable: value},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
