"""Production static files: ``collectstatic`` with the hashed-manifest storage must succeed.

With ``DEBUG=false`` WhiteNoise's manifest storage rewrites every ``url()`` and
``sourceMappingURL`` it finds and fails on a reference to a file that is not there, which
would stop every deploy (and the container build) at ``collectstatic``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.live import child_env

ROOT = Path(__file__).resolve().parents[2]


def test_production_collectstatic_builds_a_manifest_with_the_vendored_client(tmp_path):
    env = child_env(
        DEBUG="false",
        SECRET_KEY="collectstatic-test-secret-key-" + "q8Zr4" * 8,
        TRANSCRIPTION_JWT_SECRET="collectstatic-test-jwt-secret-" + "m2Xw" * 4,
        STATIC_ROOT=str(tmp_path / "static"),
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
    vendored = "vendor/livekit-client-2.23.0/livekit-client.umd.js"
    assert vendored in manifest["paths"]
    assert (tmp_path / "static" / manifest["paths"][vendored]).is_file()
