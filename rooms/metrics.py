"""Prometheus metrics of every Rooms process, and the protected ``GET /metrics`` view.

With ``PROMETHEUS_MULTIPROC_DIR`` set (one directory per machine, emptied before the processes
start), each Daphne and Celery process writes its values to memory-mapped files there and any
Daphne's ``/metrics`` reports the sum of all of them; gauges of live state count live
processes only. Without it, each process has its own registry.

Instrumentation is cheap by design: the audio path is never touched per frame. A run's audio
seconds and transcript events are published from the counters it already keeps, as deltas,
once per batcher round (``RunMeter``).
"""

from __future__ import annotations

import atexit
import hmac
import ipaddress
import os
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)


class RunCounters(Protocol):
    """What a run's meter reads (``transcription.usage.metering.UsageCounters`` has it): the
    infrastructure here never imports the apps it measures."""

    audio_seconds: float
    partial_count: int
    final_count: int


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Each metric opens its file in there as it is created.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

WEBSOCKET_CONNECTIONS = Gauge(
    "rooms_websocket_connections",
    "Open, authenticated WebSocket connections.",
    ["route"],
    multiprocess_mode="livesum",
)
RUNS_ACTIVE = Gauge(
    "rooms_transcription_runs_active",
    "Transcription runs whose pipeline is running.",
    multiprocess_mode="livesum",
)
AUDIO_SECONDS = Counter("rooms_audio_seconds", "Seconds of audio given to speech-to-text.")
TRANSCRIPT_EVENTS = Counter(
    "rooms_transcript_events", "Transcript events broadcast to sessions.", ["kind"]
)
FINALS_FLUSHED = Counter("rooms_finals_flushed", "Final segments stored in the database.")
FLUSH_SECONDS = Histogram(
    "rooms_finals_flush_seconds",
    "Time to store one batch of finals (one upsert).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
STT_RECONNECTS = Counter(
    "rooms_stt_reconnects",
    "Speech-to-text provider reconnects and replaced sessions.",
    ["provider"],
)
ERRORS = Counter("rooms_errors", "Errors by kind.", ["kind"])
MIXER_GAPS = Counter(
    "rooms_mixer_gaps",
    "Times a browser-mode microphone ran out of buffered audio and resumed after a gap of "
    "silence in the mix (its frames came later than the jitter allowance covers).",
)
MIXER_TRIMMED_SECONDS = Counter(
    "rooms_mixer_trimmed_seconds",
    "Quiet buffered audio the browser-mode mixer dropped to take back delay that late frames "
    "left (after a gap, or a microphone whose first frames came late).",
)
BILLED_MINUTES = Counter("rooms_billed_minutes", "Transcription minutes billed at finalisation.")
COST = Counter("rooms_transcription_cost", "Transcription cost billed at finalisation.")


def error(kind: str) -> None:
    ERRORS.labels(kind=kind).inc()


def stt_reconnected(provider: str) -> None:
    STT_RECONNECTS.labels(provider=provider).inc()


def mixer_observed(gaps: int, trimmed_seconds: float) -> None:
    """A mixer bank's gaps and trimmed audio since it was last asked (after every tick: a
    tick that had neither writes nothing)."""
    if gaps:
        MIXER_GAPS.inc(gaps)
    if trimmed_seconds:
        MIXER_TRIMMED_SECONDS.inc(trimmed_seconds)


# --- WebSockets ---------------------------------------------------------------------------


def ws_opened(consumer: Any, route: str) -> None:
    """Count ``consumer`` as an open connection of ``route`` until ``ws_closed``."""
    consumer._metrics_route = route
    WEBSOCKET_CONNECTIONS.labels(route=route).inc()


def ws_closed(consumer: Any) -> None:
    """Uncount ``consumer`` (idempotent; nothing for a socket that was never counted)."""
    route = getattr(consumer, "_metrics_route", None)
    if route is not None:
        consumer._metrics_route = None
        WEBSOCKET_CONNECTIONS.labels(route=route).dec()


# --- runs -----------------------------------------------------------------------------------


class RunMeter:
    """Publishes one run's counters as deltas; counts the run as active meanwhile.

    The starting values are the run's baseline, so a restarted run never counts twice what
    its previous runner already published.
    """

    def __init__(self, counters: RunCounters) -> None:
        self.audio_seconds = counters.audio_seconds
        self.partials = counters.partial_count
        self.finals = counters.final_count
        self.open = True
        RUNS_ACTIVE.inc()

    def publish(self, counters: RunCounters) -> None:
        if counters.audio_seconds > self.audio_seconds:
            AUDIO_SECONDS.inc(counters.audio_seconds - self.audio_seconds)
            self.audio_seconds = counters.audio_seconds
        if counters.partial_count > self.partials:
            TRANSCRIPT_EVENTS.labels(kind="partial").inc(counters.partial_count - self.partials)
            self.partials = counters.partial_count
        if counters.final_count > self.finals:
            TRANSCRIPT_EVENTS.labels(kind="final").inc(counters.final_count - self.finals)
            self.finals = counters.final_count

    def close(self, counters: RunCounters) -> None:
        self.publish(counters)
        if self.open:
            self.open = False
            RUNS_ACTIVE.dec()


def flush_observed(count: int, seconds: float) -> None:
    FINALS_FLUSHED.inc(count)
    FLUSH_SECONDS.observe(seconds)


def usage_billed(minutes: int, cost: Decimal) -> None:
    BILLED_MINUTES.inc(minutes)
    COST.inc(float(cost))


def timed() -> Callable[[], float]:
    """A stopwatch: call the result for the seconds since ``timed()``."""
    start = time.perf_counter()
    return lambda: time.perf_counter() - start


# --- multiprocess housekeeping ----------------------------------------------------------------

_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_processes(directory: str) -> list[int]:
    """Drop the live-gauge files of processes that died without cleaning up (kill -9)."""
    dead = set()
    for name in os.listdir(directory):
        match = _LIVE_GAUGE_FILE.match(name)
        if match and not _pid_alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)


def _mark_this_process_dead(*_: Any, **__: Any) -> None:
    directory = multiprocess_dir()
    if directory and os.path.isdir(directory):
        multiprocess.mark_process_dead(os.getpid(), directory)


if multiprocess_dir():
    atexit.register(_mark_this_process_dead)
    # Celery's prefork children leave through os._exit, past atexit.
    from celery.signals import worker_process_shutdown

    worker_process_shutdown.connect(_mark_this_process_dead, weak=False)


def render() -> bytes:
    """The exposition text: every process's values in multiprocess mode, else this one's."""
    directory = multiprocess_dir()
    if not directory:
        return generate_latest(REGISTRY)
    reap_dead_processes(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)


# --- the view ---------------------------------------------------------------------------------


def _proxied(request: HttpRequest) -> bool:
    meta = request.META
    return any(k in meta for k in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"))


def _from_allowed_network(request: HttpRequest, networks: list[str]) -> bool:
    # Behind the load balancer every request comes from loopback: a forwarded one must bring
    # the token instead.
    if _proxied(request):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: a valid ``Authorization: Bearer <METRICS_TOKEN>``, or a direct
    request from ``METRICS_ALLOWED_NETWORKS``; 401 for a wrong token, 403 otherwise."""
    if request.method != "GET":
        return JsonResponse({"detail": gettext("Method not allowed.")}, status=405)
    auth = request.headers.get("Authorization", "")
    token = settings.METRICS_TOKEN
    if auth:
        scheme, _, given = auth.partition(" ")
        valid = bool(token) and scheme.lower() == "bearer"
        if not (valid and hmac.compare_digest(given.strip().encode(), token.encode())):
            response = JsonResponse(
                {"detail": gettext("Invalid metrics token."), "code": "not_authenticated"},
                status=401,
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not _from_allowed_network(request, settings.METRICS_ALLOWED_NETWORKS):
        return JsonResponse(
            {"detail": gettext("Metrics are not public."), "code": "forbidden"}, status=403
        )
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
