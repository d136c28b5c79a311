# shellcheck shell=bash
# Start a throwaway PostgreSQL server for the registry tests and export PILOTLAB_TEST_POSTGRES_URL.
#
#   source .ci/postgres.sh          # from .ci/run (bash); the server stops when that shell exits
#
# Installs PostgreSQL with apt-get when no server binaries are found, initialises a cluster in a
# temporary folder, starts it on 127.0.0.1 on a free port as a non-root user (PostgreSQL refuses
# to run as root), creates database `pilotlab_test` and registers an EXIT trap that stops the
# server and removes the folder. Returns non-zero (without exiting the caller) if it cannot.

_pilotlab_pg_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
    done
    d=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
    return 1
}

pilotlab_pg_stop() {
    [ -n "${PILOTLAB_PG_DIR:-}" ] || return 0
    if [ -d "$PILOTLAB_PG_DIR/data" ]; then
        ${PILOTLAB_PG_AS:-} "$PILOTLAB_PG_BIN/pg_ctl" -D "$PILOTLAB_PG_DIR/data" -m fast -w stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$PILOTLAB_PG_DIR"
    unset PILOTLAB_PG_DIR PILOTLAB_TEST_POSTGRES_URL
}

pilotlab_pg_start() {
    local bin dir port user as=()
    if ! bin=$(_pilotlab_pg_bindir); then
        echo "postgres.sh: PostgreSQL not found; installing it with apt-get" >&2
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        fi
        bin=$(_pilotlab_pg_bindir) || {
            echo "postgres.sh: could not install PostgreSQL (need root and apt-get)" >&2
            return 1
        }
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/pilotlab-pg.XXXXXX") || return 1
    if [ "$(id -u)" = 0 ]; then
        user=postgres
        if ! id "$user" >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin "$user" || return 1
        fi
        chown "$user" "$dir"
        chmod 700 "$dir"
        if command -v runuser >/dev/null; then
            as=(runuser -u "$user" --)
        else
            as=(setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups --)
        fi
    fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    PILOTLAB_PG_DIR=$dir
    PILOTLAB_PG_BIN=$bin
    PILOTLAB_PG_AS="${as[*]}"
    export PILOTLAB_PG_DIR PILOTLAB_PG_BIN PILOTLAB_PG_AS
    if ! "${as[@]}" "$bin/initdb" -D "$dir/data" -U pilotlab --auth=trust -E UTF8 --no-locale \
        >"$dir/initdb.log" 2>&1; then
        echo "postgres.sh: initdb failed:" >&2; cat "$dir/initdb.log" >&2; pilotlab_pg_stop; return 1
    fi
    # fsync off: a throwaway test server; the tests exercise transactions, not disk durability.
    if ! "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $port -k $dir -F -c max_connections=200" start >/dev/null; then
        echo "postgres.sh: the server did not start:" >&2; cat "$dir/server.log" >&2
        pilotlab_pg_stop; return 1
    fi
    if ! "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U pilotlab pilotlab_test; then
        echo "postgres.sh: createdb failed" >&2; pilotlab_pg_stop; return 1
    fi
    export PILOTLAB_TEST_POSTGRES_URL="postgresql+psycopg://pilotlab@127.0.0.1:$port/pilotlab_test"
    local previous
    previous=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
    # shellcheck disable=SC2064
    trap "pilotlab_pg_stop${previous:+; $previous}" EXIT
    echo "postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" \
        "(PILOTLAB_TEST_POSTGRES_URL exported)" >&2
}

pilotlab_pg_start
