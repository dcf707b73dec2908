#!/usr/bin/env bash
# Start (or stop) a throwaway PostgreSQL cluster on a local port for the test suite.
#   scripts/pg_test_cluster.sh start DIR PORT   -> prints the database URL
#   scripts/pg_test_cluster.sh stop DIR
# Runs the server as the `postgres` system user (PostgreSQL refuses to run as root).
# fsync is off (a test cluster); PG_TEST_FSYNC=on keeps it on (scripts/bench.py --postgres).
set -euo pipefail
action=${1:?start|stop}; dir=${2:?data directory}; port=${3:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$action" in
  start)
    if [ -z "$bin" ]; then
      apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null
      bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    as_pg "$bin/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_TEST_FSYNC:-off}" -l "$dir/log" -w start >/dev/null
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres scim_test
    echo "postgresql://postgres@127.0.0.1:$port/scim_test"
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
esac
