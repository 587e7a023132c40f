#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (issue 19): its own cluster in a folder, on a free
# loopback port, trust authentication on loopback, gone with the folder.
#
#   scripts/postgres.sh start DIR     installs Debian's postgresql when initdb/pg_ctl are missing, creates
#                                     the cluster under DIR (initdb) unless it is there, starts it, waits
#                                     until it accepts connections, prints its URL on the last line:
#                                     postgresql://postgres@127.0.0.1:PORT/postgres
#   scripts/postgres.sh stop DIR      stops it (fast shutdown) and removes DIR
#   scripts/postgres.sh restart DIR   pg_ctl restart -m fast on the same port (the fault suite's scenario)
#   scripts/postgres.sh url DIR       the URL of the running cluster
#
# Run as root, the server runs as the unprivileged `postgres` user (PostgreSQL refuses root): DIR is
# handed to it, so DIR's parent must be one that user can enter (mktemp -d under /tmp is). Each verb is
# idempotent: start on a running cluster prints its URL, stop on a missing folder does nothing.
# JOBWIRE_PG_FSYNC=off turns fsync off (faster on slow disks; a process restart still loses nothing).
set -euo pipefail

usage() { echo "usage: scripts/postgres.sh start|stop|restart|url DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
verb=$1
dir=$2
case $dir in /*) ;; *) dir="$PWD/$dir" ;; esac

# The server's binaries: Debian keeps them under /usr/lib/postgresql/VERSION/bin, off PATH.
find_bin() {
    local candidate
    for candidate in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ] && { echo "$candidate"; return 0; }
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

install_postgres() {
    echo "postgres.sh: installing Debian's postgresql" >&2
    local sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    # The package would create and start a default cluster on port 5432: the tests want none.
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        $sudo_cmd mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" | $sudo_cmd tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get update -qq >/dev/null
    $sudo_cmd apt-get install -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        postgresql >/dev/null
}

# Runs a command as the cluster's owner: `postgres` when we are root, else ourselves. From inside DIR,
# so that the tools do not complain about a working directory that user cannot enter.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$dir" && runuser -u postgres -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

url_of() { echo "postgresql://postgres@127.0.0.1:$(cat "$dir/port")/postgres"; }

running() { [ -f "$dir/data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

# Waits until the server accepts connections on its port: a condition, not a sleep (30 s at most).
wait_ready() {
    local port
    port=$(cat "$dir/port")
    for _ in $(seq 300); do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -U postgres && return 0
        running || return 1
        sleep 0.1
    done
    return 1
}

case $verb in
    start | restart | url | stop) ;;
    *) usage ;;
esac

if [ "$verb" = stop ]; then
    [ -e "$dir" ] || exit 0
    if bin=$(find_bin) && running; then
        as_owner "$bin/pg_ctl" -D "$dir/data" stop -m fast -w -t 60 >/dev/null
    fi
    rm -rf "$dir"
    exit 0
fi

bin=$(find_bin) || { install_postgres; bin=$(find_bin); } || { echo "postgres.sh: no initdb/pg_ctl after installing postgresql" >&2; exit 1; }

if [ "$verb" = url ]; then
    running || { echo "postgres.sh: no cluster running in $dir" >&2; exit 1; }
    url_of
    exit 0
fi

if [ "$verb" = restart ]; then
    running || { echo "postgres.sh: no cluster running in $dir" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" restart -m fast -w -t 60 -l "$dir/postgres.log" >/dev/null
    wait_ready || { echo "postgres.sh: the server did not come back; log:" >&2; tail -n 20 "$dir/postgres.log" >&2; exit 1; }
    url_of
    exit 0
fi

# start
if running && wait_ready; then
    url_of
    exit 0
fi
mkdir -p "$dir"
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "postgres.sh: there is no postgres user (is postgresql installed?)" >&2; exit 1; }
    chown postgres: "$dir"
    runuser -u postgres -- test -w "$dir" || {
        echo "postgres.sh: the postgres user cannot write to $dir: pick a folder under one it can enter (/tmp)" >&2
        exit 1
    }
fi
if [ ! -f "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
        echo "postgres.sh: initdb failed:" >&2
        cat "$dir/initdb.log" >&2
        exit 1
    }
    as_owner mkdir -p "$dir/socket"
    cat >>"$dir/data/postgresql.conf" <<EOF
# scripts/postgres.sh: a throwaway cluster for the tests
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/socket'
max_connections = 300
fsync = ${JOBWIRE_PG_FSYNC:-on}
logging_collector = off
EOF
fi

# A free port: the kernel names one, and a start that loses the race for it picks another.
free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        echo $((20000 + RANDOM % 40000))
    fi
}
for attempt in 1 2 3 4 5; do
    port=$(free_port)
    echo "$port" >"$dir/port"
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "-p $port" start -w -t 60 >/dev/null 2>&1 && wait_ready; then
        url_of
        exit 0
    fi
    if running; then as_owner "$bin/pg_ctl" -D "$dir/data" stop -m immediate -w >/dev/null 2>&1 || true; fi
    echo "postgres.sh: start $attempt on port $port failed" >&2
done
echo "postgres.sh: the server did not start; log:" >&2
tail -n 20 "$dir/postgres.log" >&2
exit 1
