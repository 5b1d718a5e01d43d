"""Daphne on uvloop: ``python -m rooms.serve`` takes Daphne's own arguments.

Daphne runs Twisted on an asyncio loop that it creates when ``daphne.server`` is imported.
Choosing uvloop's policy before that import gives Twisted and every consumer the libuv loop,
whose scheduling, timers and socket readiness calls are written in C: the transcript fan-out
(one socket write per client per event) spends much of its time there (docs/benchmarks.md).
``ROOMS_EVENT_LOOP=asyncio`` keeps the standard loop (``rooms.runtime.use_uvloop``).
"""

from __future__ import annotations

from rooms.runtime import use_uvloop


def plain_autobahn_log_arguments() -> None:
    """autobahn builds the arguments of its per-frame debug lines (``hl``, ``hltype``) before
    the logger decides to drop them, and colours them with click when click is installed (it
    is, for Celery): ~4 % of a Daphne's samples in the fan-out profile coloured text that is
    never written. Without click it is a plain ``str``."""
    import autobahn.util

    if hasattr(autobahn.util, "_HAS_CLICK"):
        autobahn.util._HAS_CLICK = False


def main() -> None:
    use_uvloop()
    plain_autobahn_log_arguments()
    from daphne.cli import CommandLineInterface  # creates Twisted's loop: after the policy

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
