"""Browser end-to-end tests: a real Daphne subprocess on the test database, headless Chromium.

- ``daphne_server``: ``.venv/bin/daphne`` on a free loopback port, started per test after the
  test database exists, with the environment pointing it at that database (PostgreSQL: the
  ``test_<name>`` database of ``DATABASE_URL``; SQLite: the test database file that
  ``rooms/settings.py`` names). Its stdout and stderr go to ``artifacts/<test>-daphne.log``.
  Tests must use ``@pytest.mark.django_db(transaction=True)`` so their rows are committed and
  visible to it. ``@pytest.mark.daphne_env(NAME="value", ...)`` adds settings to its environment.
- ``launch_chromium``: Debian's ``/usr/bin/chromium`` through Playwright, one process per call
  because the fake microphone file is a process-wide flag.
- ``login_context``: a browser context signed in as a user (a Django session made with
  ``Client.force_login``, its cookie injected).
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pytest
import soundfile
from django.conf import settings
from django.db import connections
from django.test import Client

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
DAPHNE = [str(REPO / ".venv" / "bin" / "python"), "-m", "rooms.serve"]  # as rooms/serve.py
CHROMIUM = "/usr/bin/chromium"
SPEECH_FLAC = REPO / "tests" / "fixtures" / "speech" / "two_cities_opening.flac"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
# Variables of the test environment that would switch the server away from the setup under test.
_SERVER_ENV_DROPPED = (
    "LIVEKIT_URL",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "GLADIA_API_KEY",
    "SQLITE_PATH",
    "DATABASE_URL",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "daphne_env(**variables): extra environment for the daphne_server fixture"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_database_env() -> dict[str, str]:
    """The environment that points the server at the database this test process uses."""
    db = connections["default"].settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            pytest.fail("the SQLite test database is in memory: a subprocess cannot see it")
        return {"SQLITE_PATH": name}
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail("DATABASE_URL is needed for a non-SQLite test database")
    # pytest-django switched NAME to the test database (``test_<name>``); keep everything else.
    parts = urlsplit(url)
    return {"DATABASE_URL": urlunsplit(parts._replace(path="/" + str(db["NAME"])))}


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_until_serving(server: LiveServer, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"daphne exited with {server.process.returncode}:\n{server.log()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/accounts/login/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"daphne did not answer within {timeout:.0f} s:\n{server.log()}")


def _artifact_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def daphne_server(
    transactional_db: None, request: pytest.FixtureRequest, artifacts_dir: Path
) -> Iterator[LiveServer]:
    """A real Daphne serving ``rooms.asgi`` on the test database (embedded runner, local STT)."""
    if not Path(DAPHNE[0]).exists():
        pytest.fail(f"{DAPHNE[0]} is missing: run `make venv`")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in _SERVER_ENV_DROPPED}
    env.update(_server_database_env())
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "rooms.settings",
            "DEBUG": "true",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "TRANSCRIPTION_RUNNER": "embedded",
            "TRANSCRIPTION_MODE": "BROWSER",
            "STT_PROVIDER": "local",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        }
    )
    marker = request.node.get_closest_marker("daphne_env")
    if marker:
        env.update({name: str(value) for name, value in marker.kwargs.items()})
    log_path = artifacts_dir / f"{_artifact_name(request)}-daphne.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*DAPHNE, "-b", "127.0.0.1", "-p", str(port), "rooms.asgi:application"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        _wait_until_serving(server, port)
        yield server
    finally:
        # Stop it before pytest-django flushes the database under it.
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    soundfile.write(path, samples, rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The speech fixture as a 16 kHz mono 16-bit WAV (Chromium's fake microphone loops it),
    followed by 2 s of silence so the last phrase ends before the loop starts again."""
    audio, rate = soundfile.read(SPEECH_FLAC, dtype="int16", always_2d=True)
    mono = audio[:, 0]
    padded = np.concatenate([mono, np.zeros(2 * rate, dtype=np.int16)])
    return _write_wav(tmp_path_factory.mktemp("audio") / "speech.wav", padded, rate)


@pytest.fixture(scope="session")
def silence_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A silent microphone for the participants who only listen."""
    return _write_wav(
        tmp_path_factory.mktemp("audio") / "silence.wav", np.zeros(16000 * 5, np.int16), 16000
    )


@pytest.fixture
def playwright(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Playwright's sync API runs an event loop in this thread, so Django would refuse ORM calls
    from the test ("async context"); they are safe here (one thread, not inside the loop), so
    allow them for this test only. The server never inherits the flag."""
    from playwright import sync_api

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium`")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as p:
        try:
            yield p
        finally:
            # While the loop runs, asgiref keeps this thread's database connections apart from
            # the ones used outside it: close them here, or PostgreSQL cannot drop the test
            # database at the end ("being accessed by other users").
            connections.close_all()


@pytest.fixture
def launch_chromium(playwright) -> Iterator[Callable[[Path], object]]:
    """``launch_chromium(wav)``: a new Chromium process whose fake microphone plays ``wav``."""
    browsers = []

    def launch(wav: Path):
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}"],
        )
        browsers.append(browser)
        return browser

    yield launch
    for browser in browsers:
        browser.close()


@pytest.fixture
def login_context(daphne_server: LiveServer):
    """``login_context(browser, user)``: a browser context signed in as ``user``."""

    def make(browser, user):
        client = Client()
        client.force_login(user)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": daphne_server.url,
                }
            ]
        )
        return context

    return make


@pytest.fixture
def console_log(artifacts_dir: Path, request: pytest.FixtureRequest) -> Iterator[Callable]:
    """``console_log(page, label)``: keep the page's console and errors in an artifact."""
    lines: list[str] = []

    def attach(page, label: str) -> None:
        page.on("console", lambda msg: lines.append(f"[{label}] {msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: lines.append(f"[{label}] pageerror: {exc}"))

    yield attach
    (artifacts_dir / f"{_artifact_name(request)}-console.log").write_text("\n".join(lines) + "\n")
