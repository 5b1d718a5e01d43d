"""`make run`: it installs the runtime requirements only (the README's promise), and the
address it prints is the one it serves on."""

from __future__ import annotations

import io
import subprocess

import pytest
from django.core.management import call_command

from tests.live import ROOT


def _dry_run(*args: str) -> str:
    """What `make` would run (``-n``), as if nothing were installed yet (``-B``)."""
    result = subprocess.run(
        ["make", "-n", "-B", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_make_run_installs_the_runtime_requirements_not_the_dev_tools():
    commands = _dry_run("run")

    assert "pip install -q -r requirements.txt" in commands
    assert "requirements-dev.txt" not in commands


def test_make_test_still_installs_the_dev_tools():
    assert "pip install -q -r requirements-dev.txt" in _dry_run("test")


def test_make_run_passes_its_host_and_port_to_the_printed_address():
    commands = _dry_run("run", "PORT=9123", "HOST=0.0.0.0")

    assert "manage.py demo_setup --host 0.0.0.0 --port 9123" in commands
    assert "-b 0.0.0.0 -p 9123 rooms.asgi:application" in commands


@pytest.mark.django_db
def test_demo_setup_prints_the_port_it_is_given(settings):
    settings.DEBUG = True
    out = io.StringIO()

    call_command("demo_setup", "--port", "9123", stdout=out)

    assert "http://127.0.0.1:9123" in out.getvalue()
    assert ":8000" not in out.getvalue()


@pytest.mark.django_db
def test_demo_setup_reads_port_from_the_environment(settings, monkeypatch):
    settings.DEBUG = True
    monkeypatch.setenv("PORT", "9124")
    out = io.StringIO()

    call_command("demo_setup", stdout=out)

    assert "Rooms is starting at http://127.0.0.1:9124" in out.getvalue()
    assert "API docs: http://127.0.0.1:9124/api/docs/" in out.getvalue()
