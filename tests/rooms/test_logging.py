"""Structured logs: JSON lines in production, the pipeline's session and run on every line,
and no secrets in any line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async

from rooms.logging_setup import ContextFilter, JsonFormatter, RedactFilter, bind, unbound_context
from sessions_app.services import session_join
from sessions_app.tokens import transcription_token_create
from tests.live import ROOT
from tests.transcription.conftest import Client
from transcription.live import runner
from transcription.models import TranscriptionRun
from transcription.services import run_start

GLADIA_KEY = "gk-" + secrets.token_hex(16)
METRICS_TOKEN = "mt-" + secrets.token_hex(16)
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTEyMyIsImF1ZCI6InJvb21zIn0.c2lnbmF0dXJlLXZhbHVl"

CHILD = textwrap.dedent(
    f"""
    import logging
    import django
    django.setup()
    from rooms.logging_setup import bind
    log = logging.getLogger("transcription.live.pipeline")
    log.info("outside any run")
    bind(session="weekly-sync", run=42)
    log.info("run 42 active")
    log.warning("connect wss://api.gladia.io/v2/live?token=abc123def&x=1")
    log.warning("headers %s", {{"Authorization": "Bearer {JWT}", "x-gladia-key": "{GLADIA_KEY}"}})
    log.info("egress pushes to rtmp://10.0.0.5:19400/live/StreamKey0123456789")
    log.info("configured key %s and token %s", "{GLADIA_KEY}", "{METRICS_TOKEN}")
    log.info("database postgres://rooms:hunter2-password@db:5432/rooms")
    try:
        raise RuntimeError("failed with Authorization: Token {METRICS_TOKEN}")
    except RuntimeError:
        log.exception("it broke")
    """
)
LEAKS = (GLADIA_KEY, METRICS_TOKEN, JWT, "abc123def", "StreamKey0123456789", "hunter2-password")


def _run_child(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "DEBUG")}
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "rooms.settings",
            "GLADIA_API_KEY": GLADIA_KEY,
            "METRICS_TOKEN": METRICS_TOKEN,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_production_logs_are_json_lines_with_session_and_run_and_no_secrets():
    output = _run_child(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(48),
        TRANSCRIPTION_JWT_SECRET=secrets.token_urlsafe(32),
        ALLOWED_HOSTS="rooms.example.com",
    )

    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    by_message = {line["message"]: line for line in lines}
    outside = by_message["outside any run"]
    assert outside["session"] is None and outside["run"] is None
    assert outside["level"] == "INFO" and outside["logger"] == "transcription.live.pipeline"
    active = by_message["run 42 active"]
    assert (active["session"], active["run"]) == ("weekly-sync", 42)
    assert all(line["run"] == 42 for line in lines if line["message"] != "outside any run")
    broken = by_message["it broke"]
    assert "RuntimeError" in broken["exc"]
    for leak in LEAKS:
        assert leak not in output, leak
    assert (
        "[REDACTED]"
        in by_message["egress pushes to rtmp://10.0.0.5:19400/live/[REDACTED]"]["message"]
    )


def test_development_logs_are_plain_text_redacted_with_the_context():
    output = _run_child(DEBUG="true")

    assert not output.lstrip().startswith("{")
    assert "run 42 active [session=weekly-sync run=42]" in output
    assert "outside any run\n" in output
    for leak in LEAKS:
        assert leak not in output, leak


def test_log_format_can_be_forced_to_json_in_development():
    output = _run_child(DEBUG="true", LOG_FORMAT="json")

    assert json.loads(output.splitlines()[0])["message"] == "outside any run"


# --- in this process: the real pipeline --------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged, as the production handler would write it."""
    import rooms.asgi  # noqa: F401  (its django.setup() reconfigures logging: do it first)

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_every_line_of_a_run_names_its_session_and_run(
    settings, embedded_runner, captured, owner, member, video_session
):
    settings.STT_PROVIDER = "gladia"
    settings.GLADIA_API_KEY = GLADIA_KEY
    settings.GLADIA_API_URL = "http://127.0.0.1:9"  # nothing listens: the provider fails
    runner.bind_loop(asyncio.get_running_loop())
    await database_sync_to_async(session_join)(session=video_session, user=owner)
    listener = Client(member, video_session.slug)
    await listener.connect()
    run = await database_sync_to_async(run_start)(session=video_session, by=owner)
    await listener.until(
        lambda m: m.get("type") == "transcription_status" and m["status"] == "FAILED", timeout=30
    )
    await listener.disconnect()
    run = await database_sync_to_async(TranscriptionRun.objects.get)(pk=run.pk)
    assert run.status == "FAILED"

    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    pipeline = [line for line in lines if line["logger"].startswith("transcription.")]
    assert pipeline, text
    assert any(str(run.pk) in line["message"] for line in pipeline)
    for line in pipeline:
        assert (line["session"], line["run"]) == (video_session.slug, run.pk), line
    assert GLADIA_KEY not in text


def test_tasks_shared_by_runs_log_without_a_run(captured):
    log = logging.getLogger("transcription.live.batching")

    async def main() -> None:
        bind(session="first-session", run=1)
        log.info("from the run")
        shared = asyncio.get_running_loop().create_task(_log_later(), context=unbound_context())
        await shared

    async def _log_later() -> None:
        log.info("from the shared loop")

    asyncio.run(main())
    lines = {
        json.loads(line)["message"]: json.loads(line) for line in captured.getvalue().splitlines()
    }
    assert lines["from the run"]["run"] == 1
    assert lines["from the shared loop"]["run"] is None
    assert lines["from the shared loop"]["session"] is None


@pytest.mark.django_db
def test_a_real_transcription_token_in_a_socket_url_is_redacted(captured, member, video_session):
    token = transcription_token_create(session_slug=video_session.slug, identity=member.identity)
    logging.getLogger("django.channels.server").warning(
        "WSCONNECT /ws/sessions/%s/transcript/?token=%s", video_session.slug, token
    )
    logging.getLogger("x").warning("Authorization: Token %s", token)

    text = captured.getvalue()
    assert token not in text
    assert text.count("[REDACTED]") == 2
