#!/bin/bash
# with-postgres.sh: run a command against a private, throw-away PostgreSQL.
#
#   with-postgres.sh PROGRAM [ARGS...]
#
# initdb's a cluster into a fresh temporary directory owned by `postgres`
# (PostgreSQL refuses to run as root), starts it on a free port bound to
# 127.0.0.1 only (its Unix socket lives in the temporary directory), makes
# a password user `awtest` and a database `awtest`, runs PROGRAM with
#   AW_TEST_PG_DSN   postgresql://awtest:awtest@127.0.0.1:PORT/awtest
#   AW_TEST_PG_HOST, AW_TEST_PG_PORT, AW_TEST_PG_DATA
#   AW_TEST_PG_CTL   "this-script ctl"  (ctl stop|start: for fault tests)
# and on every way out (normal, error, signal) stops the server by the pid
# in its pid file and removes the directory. Exit status: PROGRAM's, or 77
# (skip) when PostgreSQL is not installed.
#
#   with-postgres.sh ctl stop|start   (uses the AW_TEST_PG_* variables)
set -u
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_start() {
    as_pg "$PGBIN/pg_ctl" -D "$1/data" -l "$1/log" -w -t 30 -o \
        "-p $2 -c listen_addresses=127.0.0.1 -c unix_socket_directories=$1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null
}
pg_stop() {
    [ -f "$1/data/postmaster.pid" ] || return 0
    as_pg "$PGBIN/pg_ctl" -D "$1/data" -m fast -w -t 30 stop >/dev/null 2>&1 && return 0
    # pg_ctl failed: kill the postmaster we started, by its pid
    local pid; pid=$(head -1 "$1/data/postmaster.pid" 2>/dev/null)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    return 0
}

if [ "${1:-}" = ctl ]; then
    case "${2:-}" in
        stop) pg_stop "$AW_TEST_PG_DATA" ;;
        start) pg_start "$AW_TEST_PG_DATA" "$AW_TEST_PG_PORT" ;;
        *) echo "usage: $0 ctl stop|start" >&2; exit 2 ;;
    esac
    exit $?
fi

[ $# -ge 1 ] || { echo "usage: $0 PROGRAM [ARGS...]" >&2; exit 2; }
if [ ! -x "$PGBIN/initdb" ]; then
    echo "with-postgres.sh: PostgreSQL not installed; skipping" >&2
    exit 77
fi

dir=$(mktemp -d /tmp/aw-pg.XXXXXX) || exit 1
cleanup() {
    pg_stop "$dir"
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
chmod 700 "$dir"

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 20000))
}

echo postgres > "$dir/pw" && { [ "$(id -u)" = 0 ] && chown postgres: "$dir/pw"; true; }
as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pw" -A scram-sha-256 \
    --auth-local=trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }

port=
for _ in 1 2 3 4 5; do
    port=$(free_port)
    if pg_start "$dir" "$port"; then break; fi
    port=
done
[ -n "$port" ] || { echo "with-postgres.sh: postgres did not start" >&2; cat "$dir/log" >&2; exit 1; }

as_pg "$PGBIN/psql" -h "$dir" -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE awtest LOGIN PASSWORD 'awtest'" \
    -c "CREATE DATABASE awtest OWNER awtest" >/dev/null || exit 1

export AW_TEST_PG_DSN="postgresql://awtest:awtest@127.0.0.1:$port/awtest"
export AW_TEST_PG_HOST=127.0.0.1 AW_TEST_PG_PORT=$port AW_TEST_PG_DATA=$dir
export AW_TEST_PG_CTL="$(readlink -f "$0") ctl"
"$@"
