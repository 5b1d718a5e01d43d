"""``/health`` (liveness) and ``/health/ready`` (readiness) against real PostgreSQL and Redis."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from tests.live import child_process, free_port, wait_for_port

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = {"database", "cache", "channel_layer", "broker", "stt"}


def test_liveness_answers_ok_to_anyone():
    response = Client().get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_liveness_refuses_other_methods():
    assert Client().post("/health").status_code == 405


def test_readiness_reports_every_check_with_its_latency(settings):
    response = Client().get("/health/ready")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == CHECKS
    for name, check in body["checks"].items():
        assert check["status"] == "ok", (name, check)
        assert isinstance(check["latency_ms"], int | float) and check["latency_ms"] >= 0
    vendor = "postgresql" if settings.DATABASE_URL else "sqlite"
    assert body["checks"]["database"]["backend"] == vendor
    assert body["checks"]["stt"]["provider"] == settings.STT_PROVIDER
    if settings.REDIS_URL:
        assert body["checks"]["cache"]["backend"] == "redis"
        assert body["checks"]["broker"]["backend"] == "redis"


def test_readiness_fails_when_the_stt_provider_is_not_configured(settings):
    settings.STT_PROVIDER = "gladia"
    settings.GLADIA_API_KEY = ""

    response = Client().get("/health/ready")

    assert response.status_code == 503
    stt = response.json()["checks"]["stt"]
    assert stt["status"] == "error"
    assert stt["error"] == "RuntimeError"


# --- Redis going away -----------------------------------------------------------------------

PASSWORD = "s3cret-" + secrets.token_hex(8)


@pytest.fixture
def own_redis(settings, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """A Redis of this test's own (password protected) that the test may stop; settings point
    the cache, channel layer and broker at it."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (scripts/system-deps.sh installs it)"
    port = free_port()
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    with child_process(
        [*args, "--requirepass", PASSWORD], env={}, log=tmp_path / "redis.log"
    ) as process:
        wait_for_port(port, process=process)
        settings.REDIS_URL = url
        settings.CACHES = {"default": {"BACKEND": "rooms.cache.SharedRedisCache", "LOCATION": url}}
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [{"address": url}]},
            }
        }
        settings.CELERY_BROKER_URL = url
        settings.HEALTH_CHECK_TIMEOUT_SECONDS = 1.0
        yield process


def test_readiness_is_503_when_redis_is_down_and_leaks_no_credentials(own_redis):
    process = own_redis
    client = Client()

    up = client.get("/health/ready")
    assert up.status_code == 200, up.content

    process.terminate()
    process.wait(timeout=10)
    down = client.get("/health/ready")

    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "unavailable"
    checks = body["checks"]
    assert checks["database"]["status"] == "ok"
    for name in ("cache", "channel_layer", "broker"):
        assert checks[name]["status"] == "error", (name, checks[name])
        assert checks[name]["error"]
        assert checks[name]["latency_ms"] < 3000, "each check is bounded by its timeout"
    text = down.content.decode()
    assert PASSWORD not in text
    assert "127.0.0.1" not in text
