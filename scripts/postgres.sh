#!/usr/bin/env bash
# The PostgreSQL server the tests use: a throwaway cluster of Debian's `postgresql` package,
# project-local (var/pg), listening on 127.0.0.1:$TRIBES_PG_PORT only (no Unix socket), trust
# auth (loopback only), durability and autovacuum off: for tests, never for data.
#
#   scripts/postgres.sh start      install if missing, create the cluster once, start (idempotent)
#   scripts/postgres.sh stop       stop it (no-op when it is not running)
#   scripts/postgres.sh status     exit 0 when it is running
#   scripts/postgres.sh url        print the store URL of the test database
#   scripts/postgres.sh run CMD…   start if needed, run CMD with TRIBES_TEST_PG_URL set, then stop
#                                  the server only if this run started it and no other run still
#                                  uses it; exits with CMD's status
#
# As root, initdb/pg_ctl run as the `postgres` user (PostgreSQL refuses to run as root).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${TRIBES_PG_PORT:-54329}
NAME=tribes  # role and database of the tests
BASE=${TRIBES_PG_DIR:-$ROOT/var/pg}
if [[ $(id -u) == 0 && -z ${TRIBES_PG_DIR:-} ]] && id postgres >/dev/null 2>&1 &&
    ! runuser -u postgres -- test -x "$ROOT"; then
    # The postgres user cannot reach the work tree (a private home, say): keep the cluster in /tmp.
    BASE=/tmp/tribes-pg-$(printf %s "$ROOT" | md5sum | cut -c1-8)
fi
DATA=$BASE/data
LOG=$BASE/server.log
URL="postgresql+psycopg://$NAME@127.0.0.1:$PORT/$NAME"

say() { echo "postgres.sh: $*" >&2; }

as_postgres() {
    if [[ $(id -u) == 0 ]]; then
        # From /, which postgres can always enter (a 0700 mktemp work dir makes every tool warn).
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

find_bin() {
    # Debian keeps the server binaries out of PATH: /usr/lib/postgresql/<major>/bin (newest).
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]]; then
        echo "$dir"
    fi
}

ensure_installed() {
    BIN=$(find_bin)
    if [[ -z $BIN ]]; then
        if [[ $(id -u) != 0 ]]; then
            say "PostgreSQL is not installed and installing it needs root: apt-get install -y postgresql"
            exit 1
        fi
        say "installing Debian's postgresql package"
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
        BIN=$(find_bin)
        [[ -n $BIN ]] || { say "no initdb/pg_ctl under /usr/lib/postgresql/*/bin after install"; exit 1; }
    fi
}

is_running() {
    [[ -f $DATA/PG_VERSION ]] && as_postgres "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

psql_admin() {
    as_postgres "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"
}

init_cluster() {
    mkdir -p "$BASE"
    if [[ $(id -u) == 0 ]]; then
        chown postgres:postgres "$BASE"
    fi
    say "creating the cluster in $DATA"
    as_postgres "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
    cat >>"$DATA/postgresql.conf" <<EOF

# tribes test cluster (scripts/postgres.sh): loopback only, no socket, speed over durability;
# no autovacuum: its workers would keep the tests' throwaway databases from being dropped
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = ''
fsync = off
full_page_writes = off
synchronous_commit = off
autovacuum = off
EOF
}

start() {
    ensure_installed
    if is_running; then
        say "already running on 127.0.0.1:$PORT ($DATA)"
        return 0
    fi
    [[ -f $DATA/PG_VERSION ]] || init_cluster
    as_postgres "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 >/dev/null || {
        say "the server did not start; the end of $LOG:"
        tail -n 20 "$LOG" >&2 || true
        exit 1
    }
    if [[ -z $(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$NAME'") ]]; then
        psql_admin -c "CREATE ROLE $NAME LOGIN CREATEDB"
    fi
    if [[ -z $(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$NAME'") ]]; then
        psql_admin -c "CREATE DATABASE $NAME OWNER $NAME"
    fi
    say "running on 127.0.0.1:$PORT ($DATA)"
}

stop() {
    BIN=$(find_bin)
    if [[ -n $BIN ]] && is_running; then
        as_postgres "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null
        say "stopped"
    else
        say "not running"
    fi
    rm -rf "$BASE/runs"
}

# `run` keeps one lease file per running wrapper in $BASE/runs; `managed` marks a server that a
# run started. The last run to leave stops a managed server; a server started by hand stays up.
with_lock() {
    mkdir -p "$BASE"
    exec 9>"$BASE/.lock"
    flock 9
    "$@"
    flock -u 9
}

run_enter() {
    mkdir -p "$BASE/runs"
    if ! is_running; then
        start
        touch "$BASE/runs/managed"
    fi
    touch "$BASE/runs/$$"
}

run_leave() {
    local lease
    rm -f "$BASE/runs/$$"
    for lease in "$BASE"/runs/[0-9]*; do
        [[ -e $lease ]] || continue
        kill -0 "${lease##*/}" 2>/dev/null || rm -f "$lease"  # a run that died
    done
    if [[ -e $BASE/runs/managed ]] && ! compgen -G "$BASE/runs/[0-9]*" >/dev/null; then
        stop
    fi
}

run() {
    [[ $# -gt 0 ]] || { say "run: no command"; exit 2; }
    ensure_installed
    with_lock run_enter
    trap 'with_lock run_leave' EXIT  # also on failure or Ctrl-C; the exit status is CMD's
    TRIBES_TEST_PG_URL=$URL "$@"
}

case ${1:-} in
start) start; rm -f "$BASE/runs/managed" ;;  # started by hand: runs leave it up
stop) stop ;;
status) BIN=$(find_bin); [[ -n $BIN ]] && is_running ;;
url) echo "$URL" ;;
run) shift; run "$@" ;;
*) echo "usage: $0 start|stop|status|url|run CMD..." >&2; exit 2 ;;
esac
