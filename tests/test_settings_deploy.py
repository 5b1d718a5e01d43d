"""Production settings: `check --deploy` is clean, and missing secrets stop start-up."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def production_env(**overrides: str | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "TRANSCRIPTION_JWT_SECRET", "ALLOWED_HOSTS", "DEBUG"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="rooms.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(48),
        TRANSCRIPTION_JWT_SECRET=secrets.token_urlsafe(32),
        ALLOWED_HOSTS="rooms.example.com",
        CSRF_TRUSTED_ORIGINS="https://rooms.example.com",
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings():
    env = production_env()
    assert len(env["SECRET_KEY"]) >= 50

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_false_without_secret_key_fails_with_improperly_configured():
    result = manage("check", env=production_env(SECRET_KEY=None))

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set" in result.stderr


def test_debug_false_with_a_short_secret_key_fails():
    result = manage("check", env=production_env(SECRET_KEY="short-but-not-empty"))

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be at least 50 characters" in result.stderr


def test_debug_false_without_transcription_jwt_secret_fails():
    result = manage("check", env=production_env(TRANSCRIPTION_JWT_SECRET=None))

    assert result.returncode != 0
    assert "ImproperlyConfigured: TRANSCRIPTION_JWT_SECRET must be set" in result.stderr


def test_a_misspelt_boolean_stops_start_up():
    result = manage("check", env=production_env(DEBUG="flase"))

    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG must be a boolean" in result.stderr
