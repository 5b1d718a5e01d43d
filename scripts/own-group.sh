#!/usr/bin/env bash
# Run COMMAND in a process group of its own; SIGTERM/SIGINT reach its main process only.
#   scripts/own-group.sh COMMAND [ARG...]
# honcho (like foreman) signals a process's whole group. For a Celery worker that would hit
# the pool children directly and kill their tasks mid-way instead of the warm shutdown the
# main process does. honcho sends SIGKILL 5 s after SIGTERM, so after GRACE_SECONDS (4) this
# kills the command's group itself: nothing is left behind.
set -uo pipefail
set -m

"$@" &
pid=$!
grace=${GRACE_SECONDS:-4}

stop() {
  trap - TERM INT
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq $((grace * 10))); do
    kill -0 "$pid" 2>/dev/null || return
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null
}
trap stop TERM INT

wait "$pid"
rc=$?
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; rc=$?; done
exit "$rc"
