#!/usr/bin/env bash
# Start or stop throwaway PostgreSQL and Redis servers for tests and `make up`, loopback only.
#   scripts/services.sh start DIR   -> prints export lines for DATABASE_URL and REDIS_URL
#   scripts/services.sh stop DIR
#   scripts/services.sh halt DIR    -> stops them and keeps DIR (`make up`'s persistent data)
# Servers listen on 127.0.0.1 at PG_PORT (default 54329) and REDIS_PORT (default 63799); their
# data lives in DIR and is thrown away by `stop`.
set -euo pipefail

action=${1:?start|stop}
dir=$(realpath -m "${2:?directory}")
pg_port=${PG_PORT:-54329}
redis_port=${REDIS_PORT:-63799}

pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$found" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
  echo "$found"
}

as_pg_owner() {
  # initdb and postgres refuse to run as root: run them as the unprivileged postgres user.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    mkdir -p "$dir"
    bin=$(pg_bin)
    pgdata="$dir/pg"
    if [ ! -s "$pgdata/PG_VERSION" ]; then
      mkdir -p "$pgdata"
      [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir" "$pgdata"
      as_pg_owner "$bin/initdb" -D "$pgdata" -U rooms --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
    fi
    as_pg_owner "$bin/pg_ctl" -D "$pgdata" -l "$dir/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories='$pgdata' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null
    redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
    for _ in $(seq 1 50); do
      redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    # The Redis answering must be the one just started (its data dir is ours): with the port
    # already taken, the daemon exits in the background and the tests would share (and clear
    # the rate-limit keys of) another run's server.
    if [ "$(redis-cli -p "$redis_port" config get dir 2>/dev/null | tail -n 1)" != "$dir" ]; then
      echo "Redis port $redis_port is taken by another server: set REDIS_PORT" >&2
      exit 1
    fi
    echo "export DATABASE_URL=postgres://rooms@127.0.0.1:$pg_port/rooms"
    echo "export REDIS_URL=redis://127.0.0.1:$redis_port/0"
    ;;
  stop | halt)
    if [ -f "$dir/redis.pid" ]; then
      kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    fi
    if [ -d "$dir/pg" ]; then
      as_pg_owner "$(pg_bin)/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null 2>&1 || true
    fi
    [ "$action" = halt ] || rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop|halt DIR" >&2
    exit 2
    ;;
esac
