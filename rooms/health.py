"""``GET /health`` (liveness) and ``GET /health/ready`` (readiness), for balancers and probes.

Liveness only says the process answers. Readiness checks what a request needs, each check
bounded by ``HEALTH_CHECK_TIMEOUT_SECONDS`` and run concurrently: the database, and with Redis
the cache, the channel layer and the Celery broker; and which speech-to-text provider is
configured. The answer names backends and error types only, never URLs, hosts or secrets
(the full error goes to the log, redacted).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from kombu import Connection

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[dict[str, Any]]]


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> None:
    # On a pool thread of its own (a hung database must not block the request thread), so
    # it closes its connection when done.
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()


async def _check_database() -> dict[str, Any]:
    await sync_to_async(_database, thread_sensitive=False)()
    return {"backend": connection.vendor}


async def _check_cache() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"backend": "local memory"}
    await sync_to_async(cache.get, thread_sensitive=False)("health:probe")
    return {"backend": "redis"}


async def _check_channel_layer() -> dict[str, Any]:
    layer = get_channel_layer()
    backend = type(layer).__name__
    if settings.REDIS_URL:
        # A publish to a group nobody listens to: one round-trip to Redis, no side effects.
        await layer.group_send("health.probe", {"type": "health.probe"})
    return {"backend": backend}


def _broker() -> None:
    with Connection(
        settings.CELERY_BROKER_URL,
        connect_timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS,
        transport_options={"socket_timeout": settings.HEALTH_CHECK_TIMEOUT_SECONDS},
    ) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0)


async def _check_broker() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"backend": "in-process (eager tasks)"}
    await sync_to_async(_broker, thread_sensitive=False)()
    return {"backend": "redis"}


def _stt() -> dict[str, Any]:
    provider = settings.STT_PROVIDER
    if provider == "gladia":
        if not settings.GLADIA_API_KEY:
            raise RuntimeError("GLADIA_API_KEY is not set")
    elif provider == "local":
        if importlib.util.find_spec("faster_whisper") is None:
            raise RuntimeError("faster-whisper is not installed")
        from transcription.live.stt import SttError
        from transcription.live.stt.local import default_model_dir
        from transcription.live.stt.whisper_worker import missing_model_files

        try:
            model_dirs = [settings.OFFLINE_STT_MODEL_DIR or default_model_dir()]
        except SttError as exc:
            raise RuntimeError(exc.message) from exc
        if settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR:
            model_dirs.append(settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR)
        for model_dir in model_dirs:
            if missing := missing_model_files(model_dir):
                raise RuntimeError(f"{model_dir} lacks {', '.join(missing)}")
    else:
        module_name, _, class_name = provider.partition(":")
        getattr(importlib.import_module(module_name), class_name)
    return {"provider": provider if ":" not in provider else "custom"}


async def _check_stt() -> dict[str, Any]:
    return _stt()


CHECKS: dict[str, Check] = {
    "database": _check_database,
    "cache": _check_cache,
    "channel_layer": _check_channel_layer,
    "broker": _check_broker,
    "stt": _check_stt,
}


async def _run(name: str, check: Check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS)
        result = {"status": "ok", **detail}
    except TimeoutError:
        logger.warning("readiness: %s timed out", name)
        result = {"status": "error", "error": "timeout"}
    except Exception as exc:
        logger.warning("readiness: %s failed: %r", name, exc)
        result = {"status": "error", "error": type(exc).__name__}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


@require_GET
async def ready(request: HttpRequest) -> JsonResponse:
    results = await asyncio.gather(*(_run(name, check) for name, check in CHECKS.items()))
    checks = dict(zip(CHECKS, results, strict=True))
    ok = all(result["status"] == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )
