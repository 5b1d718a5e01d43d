"""Container health probe: ``GET /health`` on this container's Daphne, exit 0 when it answers.

Sent as the balancer would forward it (first ``ALLOWED_HOSTS`` entry as the host, https as the
forwarded scheme), so host validation and the HTTPS redirect of production settings apply as
they do to real traffic. Standard library only.
"""

from __future__ import annotations

import http.client
import os
import sys


def main() -> int:
    host = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip() or "localhost"
    port = int(os.environ.get("HEALTH_PORT", "8000"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        connection.request(
            "GET", "/health", headers={"Host": host.lstrip("."), "X-Forwarded-Proto": "https"}
        )
        status = connection.getresponse().status
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if status != 200:
        print(f"unhealthy: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
