#!/usr/bin/env bash
# The harness itself: the server starts, the station role gets in with its password and not
# without it, and a stopped server comes back with its data (what the outage tests rely on).
. "$(dirname "$0")/lib.sh"

pg_start
expect_eq "station role" "$(psql "$URL" -X -A -t -c 'select current_user')" station
if psql "${URL/station-pw/wrong}" -X -A -t -c 'select 1' >/dev/null 2>&1; then
    fail "a wrong password was let in"
fi
pg_sql "create table t (x int); insert into t values (42)"
pg_stop
if psql "$URL" -X -A -t -c 'select 1' >/dev/null 2>&1; then
    fail "the stopped server still answers"
fi
pg_start
expect_eq "data after a restart" "$(pg_sql 'select x from t')" 42
