"""The fault tests run on the server-mode stack: its fixtures, registered once for them all.

``server_stack`` (a module-scoped Daphne + Celery worker + fakes) may be overridden by a test
module that needs its own (a private Redis, a PostgreSQL proxy).
"""

from tests.transcription.server_conftest import (  # noqa: F401 (fixtures, registered by name)
    server_mode_fixture,
    server_stack_fixture,
    watch_fixture,
)
