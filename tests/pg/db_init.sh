#!/usr/bin/env bash
# `espstation db init URL` against a real server: an empty database gets schema version 1, a
# second run changes nothing, four at once apply it once, and every refusal (wrong password,
# missing database, no server, no permission, a newer schema, a bad URL) is one clear line
# naming the database without its password, with exit status 1 (database) or 2 (usage).
. "$(dirname "$0")/lib.sh"

pg_start
shown="station@$PGDIR/factory"

# An empty database: version 1, the tables of sql/001-init.sql.
out=$("$ES" db init "$URL")
expect_eq "first init" "$out" "fleet database $shown: schema at version 1 (applied 001-init)"
expect_eq "versions" "$(pg_sql 'select string_agg(version::text, $$,$$) from espstation_schema')" 1
tables="select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname = 'public'"
expect_eq "tables" "$(pg_sql "$tables")" "boards,espstation_schema,runs"
expect_eq "owner" "$(pg_sql "select tableowner from pg_tables where tablename = 'boards'")" station

# Again: nothing applied, nothing changed (not even the time version 1 was recorded).
catalog="select count(*) || '/' || max(applied_at)::text from espstation_schema"
objects="select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where nspname = 'public'"
before="$(pg_sql "$catalog") $(pg_sql "$objects")"
out=$("$ES" db init "$URL")
expect_eq "second init" "$out" "fleet database $shown: schema already at version 1"
expect_eq "second init changed nothing" "$(pg_sql "$catalog") $(pg_sql "$objects")" "$before"

# Four inits at once on an empty database: all succeed, one applies version 1, one row.
pg_sql "create database race owner station"
race=${URL/\/factory/\/race}
for i in 1 2 3 4; do
    "$ES" db init "$race" >"$T/race.$i.out" 2>&1 &
    pids[i]=$!
done
for i in 1 2 3 4; do
    wait "${pids[$i]}" || fail "concurrent init $i failed: $(cat "$T/race.$i.out")"
done
expect_eq "inits that applied" "$(cat "$T"/race.*.out | grep -c 'applied 001-init')" 1
expect_eq "inits that found it done" "$(cat "$T"/race.*.out | grep -c 'already at version 1')" 3
expect_eq "race versions" "$(psql -h "$PGDIR" -U postgres -d race -X -A -t -c \
    'select count(*) || $$/$$ || max(version) from espstation_schema')" 1/1

# expect_refusal NAME STATUS PATTERN URL: exit status STATUS, one line on stderr naming the
# database as shown and matching PATTERN, nothing on stdout, no password anywhere.
expect_refusal() {
    local name=$1 want=$2 pattern=$3 url=$4 rc=0
    "$ES" db init "$url" >"$T/out" 2>"$T/err" || rc=$?
    expect_eq "$name: exit status" "$rc" "$want"
    expect_eq "$name: stdout" "$(cat "$T/out")" ""
    expect_eq "$name: lines on stderr" "$(wc -l <"$T/err")" 1
    grep -q -- "$pattern" "$T/err" || fail "$name: '$pattern' not in: $(cat "$T/err")"
    if grep -q -e station-pw -e wrong-pw -e secret "$T/err"; then
        fail "$name: the message shows a password: $(cat "$T/err")"
    fi
}
expect_refusal "wrong password" 1 \
    "fleet database $shown: cannot connect: .*password authentication failed for user \"station\"" \
    "${URL/station-pw/wrong-pw}"
expect_refusal "missing database" 1 \
    "fleet database station@$PGDIR/nodb: cannot connect: .*database \"nodb\" does not exist" \
    "${URL/\/factory/\/nodb}"
expect_refusal "no server" 1 \
    "fleet database station@$T/nowhere/factory: cannot connect: .*No such file or directory" \
    "postgresql://station:station-pw@/factory?host=$T/nowhere"
expect_refusal "invalid URL" 2 "the database URL is not valid" \
    "postgresql://station:secret@/factory?host=$PGDIR&secret=1"

# A role that may connect but not create tables: refused, and nothing recorded.
pg_sql "create role viewer login password 'viewer-pw'"
pg_sql "create database locked owner postgres"
viewer="postgresql://viewer:viewer-pw@/locked?host=$PGDIR"
expect_refusal "no permission" 1 "fleet database viewer@$PGDIR/locked: .*permission denied" "$viewer"
expect_eq "no permission: tables" "$(psql -h "$PGDIR" -U postgres -d locked -X -A -t -c \
    "select count(*) from pg_tables where schemaname = 'public'")" 0

# The same role on a database someone else set up: told it is current (nothing to create).
pg_sql "grant select on espstation_schema to viewer"
out=$("$ES" db init "postgresql://viewer:viewer-pw@/factory?host=$PGDIR")
expect_eq "current, as a role that may not create" "$out" \
    "fleet database viewer@$PGDIR/factory: schema already at version 1"

# A database from a newer espstation: refused, untouched.
pg_sql "insert into espstation_schema (version) values (99)"
before="$(pg_sql "$catalog") $(pg_sql "$objects")"
expect_refusal "newer schema" 1 \
    "fleet database $shown: its schema is at version 99, newer than this espstation knows (1)" "$URL"
expect_eq "newer schema untouched" "$(pg_sql "$catalog") $(pg_sql "$objects")" "$before"

# The command line.
for args in "db" "db frob $URL" "db init" "db init $URL extra"; do
    rc=0
    # shellcheck disable=SC2086 # the words are the test
    "$ES" $args >/dev/null 2>&1 || rc=$?
    expect_eq "espstation $args" "$rc" 2
done
