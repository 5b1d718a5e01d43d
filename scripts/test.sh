#!/usr/bin/env bash
# The whole test suite against real PostgreSQL and Redis servers started here (loopback only).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/system-deps.sh
svc_dir=$(mktemp -d /tmp/rooms-test-services.XXXXXX)
trap 'scripts/services.sh stop "$svc_dir"' EXIT
eval "$(scripts/services.sh start "$svc_dir")"
export DATABASE_URL REDIS_URL
mkdir -p artifacts

set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit $rc
