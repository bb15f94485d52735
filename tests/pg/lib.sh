# Sourced by the tests in tests/pg: a throwaway PostgreSQL server per test (tests/pg/pg-server)
# and the espstation binary under test. Each test runs in its own directory, removed on success
# and kept (with the server's log) on failure. Usage in a test:
#   . "$(dirname "$0")/lib.sh"          # sets ES (espstation), SIM (espsim), T (the test dir)
#   pg_start                            # sets URL (the station role's) and PGDIR
#   pg_sql "select count(*) from boards"   # as the superuser, unaligned, no header
#   pg_stop / pg_start                  # stop and start the same server again
set -euo pipefail

: "${ES_BUILD:?ES_BUILD must name the build directory}"
ES=$ES_BUILD/src/cli/espstation
SIM=$ES_BUILD/tools/sim/espsim
ES_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
test_name=$(basename "$0" .sh)
T=$ES_BUILD/tests/pg/work/$test_name
rm -rf "$T"
mkdir -p "$T"
PGDIR=$T/pg
_pg_started=0

_pg_cleanup() {
    local rc=$?
    if [ "$_pg_started" -eq 1 ]; then
        "$ES_SRC/tests/pg/pg-server" stop "$PGDIR" >/dev/null 2>&1 || true
    fi
    # Whatever the stations wrote (reports, run.json, journal lines) must fit the JSON Schemas,
    # as in every integration case: a publishing field left out of schema/ fails here.
    if [ "$rc" -eq 0 ]; then
        local roots
        roots=$(find "$T" -name run.json -not -path "*/outbox/*" -printf '%h\n' 2>/dev/null |
            xargs -r -n1 dirname | sort -u)
        if [ -n "$roots" ]; then
            # shellcheck disable=SC2086
            node "$ES_SRC/tests/schema/validate.mjs" run $roots >&2 || rc=1
        fi
    fi
    if [ "$rc" -eq 0 ]; then
        rm -rf "$T"
    else
        echo "$test_name: FAILED (exit $rc); kept $T" >&2
        [ -f "$PGDIR/server.log" ] && tail -15 "$PGDIR/server.log" >&2
    fi
    exit "$rc"
}
trap _pg_cleanup EXIT

pg_start() {
    URL=$("$ES_SRC/tests/pg/pg-server" start "$PGDIR")
    _pg_started=1
}

pg_stop() {
    "$ES_SRC/tests/pg/pg-server" stop "$PGDIR"
}

# One query as the superuser "postgres" on the database factory: values only, '|' between.
pg_sql() {
    psql -h "$PGDIR" -U postgres -d factory -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"
}

fail() {
    echo "$test_name: $*" >&2
    exit 1
}

# expect_eq WHAT GOT WANT
expect_eq() {
    [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}
