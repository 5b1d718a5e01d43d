#!/usr/bin/env bash
# Wait until something listens on each 127.0.0.1 PORT, then exec COMMAND (`make up` starts the
# balancer only once its Daphnes accept connections). Gives up after WAIT_SECONDS (120).
#   scripts/wait-for-ports.sh PORT... -- COMMAND [ARG...]
set -euo pipefail

ports=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do ports+=("$1"); shift; done
[ "${1:-}" = -- ] && [ $# -gt 1 ] || { echo "usage: $0 PORT... -- COMMAND" >&2; exit 2; }
shift
deadline=$((SECONDS + ${WAIT_SECONDS:-120}))
for port in "${ports[@]}"; do
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      echo "nothing listens on 127.0.0.1:$port after ${WAIT_SECONDS:-120} s" >&2
      exit 1
    fi
    sleep 0.2
  done
done
exec "$@"
