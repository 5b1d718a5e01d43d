#!/usr/bin/env bash
# `make up`: the distributed topology of SPEC §6 on this machine, every process on loopback.
#
#   PostgreSQL + Redis (scripts/services.sh, data kept in $UP_DIR/services)
#   nginx balancer  UP_HOST:UP_PORT  ->  Daphne web1, web2 (UP_WEB_PORTS), WebSockets included;
#                   nginx reaches each Daphne on a Unix socket ($UP_DIR/web-PORT.sock), and the
#                   Daphne also listens on its port for direct checks
#   Celery worker for `default`, Celery workers for `ingest` (one per core), Celery beat
#
# The processes run under honcho from a Procfile generated in $UP_DIR; Ctrl-C (SIGINT) or
# SIGTERM stops all of them, then PostgreSQL and Redis.
#
# Settings (all optional): UP_DIR (.run), UP_HOST (127.0.0.1), UP_PORT (8000),
# UP_WEB_PORTS ("8001 8002"), UP_INGEST_WORKERS (one per core), UP_RUNS_PER_INGEST_WORKER (100),
# PG_PORT (55432), REDIS_PORT (56379). Rooms' own variables
# (README) pass through; DEBUG stays true unless set.
set -euo pipefail

# Ctrl-C must reach the trap below. A non-interactive shell cannot trap a signal that was
# ignored when it started, and a CI runner or a shell without job control starts background
# commands with SIGINT ignored: honcho (which sets its own handler) then stopped everything on
# Ctrl-C while this script never saw it and passed on honcho's 130 instead of exiting 0. So
# when SIGINT or SIGTERM comes ignored or blocked, start again with their default handling.
if [ -z "${ROOMS_UP_SIGNALS_RESET:-}" ] && [ -r "/proc/$$/status" ]; then
  sig_ign=$(awk '$1 == "SigIgn:" { print $2 }' "/proc/$$/status")
  sig_blk=$(awk '$1 == "SigBlk:" { print $2 }' "/proc/$$/status")
  reset_python="$(dirname "$0")/../.venv/bin/python"
  # Bit n-1 is signal n: SIGINT (2) is 0x2, SIGTERM (15) is 0x4000.
  if (((16#$sig_ign | 16#$sig_blk) & 0x4002)) && [ -x "$reset_python" ]; then
    export ROOMS_UP_SIGNALS_RESET=1
    exec "$reset_python" -c '
import os, signal, sys
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ):
    signal.signal(sig, signal.SIG_DFL)  # Python itself ignores SIGPIPE and SIGXFSZ
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
os.execv(sys.argv[1], sys.argv[1:])
' "$0" "$@"
  fi
fi

cd "$(dirname "$0")/.."
root=$PWD

up_dir=$(realpath -m "${UP_DIR:-.run}")
host=${UP_HOST:-127.0.0.1}
port=${UP_PORT:-8000}
read -r -a web_ports <<<"${UP_WEB_PORTS:-8001 8002}"
ingest_workers=${UP_INGEST_WORKERS:-$(nproc)}
runs_per_worker=${UP_RUNS_PER_INGEST_WORKER:-100}
export PG_PORT=${PG_PORT:-55432} REDIS_PORT=${REDIS_PORT:-56379}
venv=$root/.venv/bin
services_dir=$up_dir/services
nginx_dir=$up_dir/nginx

[ -x "$venv/python" ] || { echo "no .venv: run \`make up\` (it creates it)" >&2; exit 1; }
scripts/system-deps.sh --up

# Thousands of WebSockets need thousands of descriptors (Daphne, nginx, load generators).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$up_dir" "$nginx_dir/tmp" "$root/media"
# initdb runs as the postgres user when we are root, and nginx workers as nobody: both must be
# able to reach their directories.
chmod 755 "$up_dir"

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PG_PORT" "$REDIS_PORT" "$port" "${web_ports[@]}"; do
  if in_use "$p"; then
    echo "127.0.0.1:$p is in use (another \`make up\`?): choose other ports (see docs/deploy.md)" >&2
    exit 1
  fi
done

honcho_pid=""
stopping=0
shutdown() {
  trap - INT TERM
  stopping=1
  [ -n "$honcho_pid" ] && kill -TERM "$honcho_pid" 2>/dev/null || true
}
cleanup() {
  if [ -n "$honcho_pid" ]; then
    wait "$honcho_pid" 2>/dev/null || true
  fi
  scripts/services.sh halt "$services_dir"
}
trap cleanup EXIT
trap shutdown INT TERM

exports=$(scripts/services.sh start "$services_dir")
eval "$exports"
export DATABASE_URL REDIS_URL
if ! psql -h 127.0.0.1 -p "$PG_PORT" -U rooms -d rooms -c '' >/dev/null 2>&1; then
  createdb -h 127.0.0.1 -p "$PG_PORT" -U rooms rooms
fi
export TRUST_PROXY_HEADERS=${TRUST_PROXY_HEADERS:-true}
export PYTHONUNBUFFERED=1
# /metrics adds up the counters of every process of this machine (emptied on each start).
export PROMETHEUS_MULTIPROC_DIR=$up_dir/prometheus
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

"$venv/python" manage.py migrate --noinput -v0
"$venv/python" manage.py collectstatic --noinput -v0
case "${DEBUG:-true}" in
  0 | [Ff]alse | FALSE | [Nn]o | NO | [Oo]ff | OFF) ;;
  *) "$venv/python" manage.py demo_setup --host "$host" --port "$port" ;;
esac

# The balancer: the shared template (deploy/nginx.conf) inside a main configuration that keeps
# everything nginx writes under $nginx_dir.
# nginx reaches the Daphnes on Unix sockets: on one machine a message costs a Daphne about half
# the CPU of a loopback TCP send, and the fan-out writes one per socket per event
# (docs/benchmarks.md, issue 20). Each Daphne also listens on its port (checks, tests).
upstreams=""
for p in "${web_ports[@]}"; do
  sock=$up_dir/web-$p.sock
  if [ "${#sock}" -gt 100 ]; then
    echo "$sock: too long for a Unix socket (100 characters at most): choose a shorter UP_DIR" >&2
    exit 1
  fi
  rm -f "$sock"
  upstreams+="server unix:$sock; "
done
ROOMS_LISTEN="$host:$port" ROOMS_UPSTREAMS="$upstreams" ROOMS_MEDIA_ROOT="$root/media" \
  ROOMS_ACCESS_LOG="$nginx_dir/access.log" ROOMS_FORWARDED_PROTO='$scheme' \
  "$venv/python" - deploy/nginx.conf "$nginx_dir/rooms.conf" <<'PY'
import os, re, sys
template = open(sys.argv[1]).read()
def value(match):
    return os.environ[match.group(1)]
open(sys.argv[2], "w").write(re.sub(r"\$\{(ROOMS_[A-Z_]+)\}", value, template))
PY
cat >"$nginx_dir/nginx.conf" <<EOF
# Generated by scripts/up.sh; edit deploy/nginx.conf instead.
daemon off;
worker_processes auto;
worker_rlimit_nofile 20000;
pid $nginx_dir/nginx.pid;
error_log $nginx_dir/error.log warn;
events { worker_connections 8192; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path $nginx_dir/tmp/body;
    proxy_temp_path $nginx_dir/tmp/proxy;
    fastcgi_temp_path $nginx_dir/tmp/fastcgi;
    uwsgi_temp_path $nginx_dir/tmp/uwsgi;
    scgi_temp_path $nginx_dir/tmp/scgi;
    include $nginx_dir/rooms.conf;
}
EOF
/usr/sbin/nginx -t -q -p "$nginx_dir" -c "$nginx_dir/nginx.conf" -e "$nginx_dir/error.log"

procfile=$up_dir/Procfile
: >"$procfile"
i=0
for p in "${web_ports[@]}"; do
  i=$((i + 1))
  echo "web$i: exec $venv/python -m rooms.serve -b 127.0.0.1 -p $p -u $up_dir/web-$p.sock --proxy-headers --access-log /dev/null rooms.asgi:application" >>"$procfile"
done
# Celery workers are long-lived threads, not ASGI request threads: each keeps its database
# connection (Django's CONN_MAX_AGE) instead of opening one per query batch, which cost a
# PostgreSQL backend fork ~50 times a second at 100 sessions (docs/benchmarks.md). The Daphnes
# keep Django's ASGI default (a connection per use).
worker_db="env DB_CONN_MAX_AGE=${WORKER_DB_CONN_MAX_AGE:-60}"
cat >>"$procfile" <<EOF
balancer: exec scripts/wait-for-ports.sh ${web_ports[*]} -- /usr/sbin/nginx -p $nginx_dir -c $nginx_dir/nginx.conf -e $nginx_dir/error.log
worker-default: exec $worker_db scripts/own-group.sh $venv/celery -A rooms worker -Q default -n default@%h -c 2 -l info
beat: exec $worker_db $venv/celery -A rooms beat -l info -s $up_dir/celerybeat-schedule
EOF
# Ingest: one worker per core, each a thread pool whose runs share one event loop
# (transcription.live.runner.RunHost); a thread per run, so -c bounds the runs per worker.
for n in $(seq 1 "$ingest_workers"); do
  echo "worker-ingest$n: exec $worker_db scripts/own-group.sh $venv/celery -A rooms worker -Q ingest -n ingest$n@%h -P threads -c $runs_per_worker --prefetch-multiplier 1 -l info" >>"$procfile"
done

echo
echo "  Rooms (distributed: ${#web_ports[@]} Daphnes behind nginx) at http://$host:$port"
echo "  PostgreSQL 127.0.0.1:$PG_PORT, Redis 127.0.0.1:$REDIS_PORT, data in $up_dir"
echo "  Ctrl-C stops everything."
echo

"$venv/honcho" -f "$procfile" -d "$root" start &
honcho_pid=$!
set +e
wait "$honcho_pid"
rc=$?
# A signal interrupts `wait`; wait again for honcho to finish stopping its processes.
while kill -0 "$honcho_pid" 2>/dev/null; do wait "$honcho_pid"; rc=$?; done
set -e
honcho_pid=""
[ "$stopping" = 1 ] && exit 0
exit "$rc"
