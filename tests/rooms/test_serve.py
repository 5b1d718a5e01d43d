"""rooms.serve: Daphne's Twisted reactor runs on uvloop unless ROOMS_EVENT_LOOP=asyncio."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.live import ROOT

# What `python -m rooms.serve` does before Daphne's command line runs, then the loop that
# daphne.server created for Twisted.
PROBE = """
from rooms import serve
serve.use_uvloop()  # what serve.main() calls first
serve.plain_autobahn_log_arguments()
import autobahn.util, daphne.server
from twisted.internet import reactor
loop = daphne.server.twisted_loop
print(type(loop).__module__, reactor._asyncioEventloop is loop)
print(autobahn.util.hl("x"))
"""


@pytest.mark.parametrize(
    ("setting", "loop_module"), [(None, "uvloop"), ("asyncio", "asyncio.unix_events")]
)
def test_daphne_gets_the_chosen_event_loop(setting: str | None, loop_module: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "rooms.settings"}
    if setting:
        env["ROOMS_EVENT_LOOP"] = setting
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    loop_line, highlighted = out.stdout.splitlines()
    assert loop_line == f"{loop_module} True"
    # autobahn's debug-line arguments are plain text, without click's colour codes.
    assert highlighted == "x"
