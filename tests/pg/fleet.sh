#!/usr/bin/env bash
# `espstation fleet URL` against rows inserted by hand: two lines and a rework bench, two
# profiles, passes and failures in several phases, a MAC passing in two runs, rows just outside
# the window. Every expected number below is worked out from the rows in the comments; the text
# and the --json document are checked whole. Also: the default window is today, the filters,
# a role with only SELECT, and that fleet's session never writes.
. "$(dirname "$0")/lib.sh"
export TZ=UTC
command -v jq >/dev/null || fail "jq is missing (tools/setup-deps.sh installs it)"

pg_start
"$ES" db init "$URL" >/dev/null
shown="station@$PGDIR/factory"

# row STATION RUN SLOT MAC PROFILE RESULT PHASE CODE START END (MAC, PHASE, CODE: - for NULL;
# times UTC, "D" standing for the window's day 2026-11-02)
rows=""
row() {
    local mac=$4 phase=$7 code=$8 start=${9/D/2026-11-02} end=${10/D/2026-11-02}
    local m="'$mac'" p="'$phase'" c="'$code'"
    [ "$mac" = - ] && m=NULL
    [ "$phase" = - ] && p=NULL
    [ "$code" = - ] && c=NULL
    rows+="('$1/$2/$3/$mac/$start', '$1', '$2', '$3', $m, 'esp32', '$5', 'sha-$5', '$6', $p, $c,
           '$start+00', '$end+00', '{}'),"
}
insert_rows() {
    pg_sql "insert into boards (record_key, station, run_id, slot, mac, chip, profile_name,
            profile_sha256, result, phase, error_code, started_at, ended_at, report)
            values ${rows%,}"
    rows=""
}

# line-1 app, run r1: 6 boards, 2 passed, 3 failed, 1 interrupted: yield 2/5 = 40.0 %;
# first start 08:00, last end 10:00: 6 boards / 2 h = 3.00 per hour. Phases flash 2, sync 1;
# codes flash_write, no_sync, timeout 1 each (ties by name).
row line-1 r1 s1 02:00:00:00:00:01 app pass - - "D 08:00:00" "D 08:01:00"
row line-1 r1 s2 02:00:00:00:00:02 app pass - - "D 08:00:00" "D 08:01:30"
row line-1 r1 s3 02:00:00:00:00:03 app fail flash flash_write "D 08:00:00" "D 08:00:40"
row line-1 r1 s4 - app fail sync no_sync "D 08:00:00" "D 08:00:20"
row line-1 r1 s5 02:00:00:00:00:05 app fail flash timeout "D 09:00:00" "D 09:00:50"
row line-1 r1 s6 02:00:00:00:00:06 app interrupted flash interrupted "D 09:00:00" "D 10:00:00"
# line-1 rom, the same run: 1 board in 1 min: 60.00 per hour, yield 100.0 %.
row line-1 r1 s7 02:00:00:00:00:07 rom pass - - "D 08:30:00" "D 08:31:00"
# line-2 app, run r2: 5 boards (one started the day before, ended in the window), 3 passed,
# 2 failed: yield 60.0 %; 23:50 the day before to 11:06 is 11 h 16 min: 5 / 11.2667 = 0.44
# per hour. Phases sync 1, verify 1; codes no_sync 1, verify_mismatch 1. MAC 01 passed on
# line-1 too (a duplicate); MAC 09 passes twice in r2 (not a duplicate by itself) and again in
# r4, just after the window (a duplicate, listed with all three rows).
row line-2 r2 s1 02:00:00:00:00:01 app pass - - "D 11:00:00" "D 11:01:00"
row line-2 r2 s2 02:00:00:00:00:09 app pass - - "D 11:00:00" "D 11:01:00"
row line-2 r2 s3 02:00:00:00:00:0a app fail verify verify_mismatch "D 11:00:00" "D 11:02:00"
row line-2 r2 s2 02:00:00:00:00:09 app pass - - "D 11:05:00" "D 11:06:00"
row line-2 r2 s4 - app fail sync no_sync "2026-11-01 23:50:00" "D 00:10:00"
# line-2 rom, run r3: 2 passed in 2 min: 60.00 per hour. MAC 07 passed on line-1 with rom (a
# duplicate); MAC 02 passed on line-1 with app, another profile (not a duplicate).
row line-2 r3 s1 02:00:00:00:00:07 rom pass - - "D 12:00:00" "D 12:01:00"
row line-2 r3 s2 02:00:00:00:00:02 rom pass - - "D 12:00:00" "D 12:02:00"
# rework app, run w1: 10 failed, all started at 10:00, the last ended 10:09: 10 / 0.15 h =
# 66.67 per hour, yield 0.0 %. Top 5 phases: a 3, b 2, c 1, d 1, e 1 (f and g cut, and ties
# go by name); codes timeout 10.
for p in a a a b b c d e f; do
    n=$((${n:-0} + 1))
    row rework w1 "k$n" - app fail "$p" timeout "D 10:00:00" "D 10:0$n:00"
done
row rework w1 k10 - app fail g timeout "D 10:00:00" "D 10:09:00"
# Outside the window: before it (r0, and MAC 0b passing in two runs, both before: not listed),
# and at its end (exclusive).
row line-1 r0 s1 02:00:00:00:00:0b app pass - - "2026-11-01 23:00:00" "2026-11-01 23:59:59"
row line-1 r0 s2 02:00:00:00:00:05 app fail flash timeout "2026-11-01 23:00:00" "2026-11-01 23:30:00"
row line-2 r-old s1 02:00:00:00:00:0b app pass - - "2026-10-01 08:00:00" "2026-10-01 08:01:00"
row line-2 r4 s1 02:00:00:00:00:09 app pass - - "2026-11-02 23:59:00" "2026-11-03 00:00:00"
insert_rows

window=(--since 2026-11-02 --until 2026-11-03)
"$ES" fleet "$URL" "${window[@]}" >"$T/text" || fail "fleet exited $?"
"$ES" fleet "$URL" "${window[@]}" --json >"$T/json" || fail "fleet --json exited $?"
cat >"$T/want" <<TEXT
fleet database $shown: boards that ended from 2026-11-02 00:00:00 to 2026-11-03 00:00:00 (local time, UTC+00:00)

STATION  PROFILE  BOARDS  PASSED  FAILED  INTERRUPTED   YIELD  BOARDS/H
line-1   app           6       2       3            1   40.0%      3.00
line-1   rom           1       1       0            0  100.0%     60.00
line-2   app           5       3       2            0   60.0%      0.44
line-2   rom           2       2       0            0  100.0%     60.00
rework   app          10       0      10            0    0.0%     66.67

top failures (failed boards; at most 5 each)
  line-1 app: phases flash 2, sync 1; codes flash_write 1, no_sync 1, timeout 1
  line-2 app: phases sync 1, verify 1; codes no_sync 1, verify_mismatch 1
  rework app: phases a 3, b 2, c 1, d 1, e 1; codes timeout 10

duplicate MACs (passed with one profile in more than one run or station)
  02:00:00:00:00:01  app
    2026-11-02 08:01:00  line-1  run r1  slot s1
    2026-11-02 11:01:00  line-2  run r2  slot s1
  02:00:00:00:00:09  app
    2026-11-02 11:01:00  line-2  run r2  slot s2
    2026-11-02 11:06:00  line-2  run r2  slot s2
    2026-11-03 00:00:00  line-2  run r4  slot s1
  02:00:00:00:00:07  rom
    2026-11-02 08:31:00  line-1  run r1  slot s7
    2026-11-02 12:01:00  line-2  run r3  slot s1
TEXT
diff -u "$T/want" "$T/text" || fail "fleet's text differs from the rows (above)"

# The JSON document: its fields, then every number, ranking and duplicate, one line each.
j() { jq -r "$@" "$T/json"; }
expect_eq "json keys" "$(j -c 'keys_unsorted')" \
    '["database","since","until","station","profile","groups","duplicate_macs"]'
expect_eq "json window" "$(j '[.database, .since, .until, .station, .profile] | @tsv')" \
    "$shown	2026-11-02T00:00:00+00:00	2026-11-03T00:00:00+00:00		"
expect_eq "json group keys" "$(j -c '[.groups[] | keys_unsorted] | unique[]')" \
    '["station","profile","boards","passed","failed","interrupted","yield_pct","boards_per_hour","first_start","last_end","top_phases","top_errors"]'
expect_eq "json groups" "$(j '.groups[] | [.station, .profile, .boards, .passed, .failed,
    .interrupted, .yield_pct, .boards_per_hour, .first_start, .last_end] | @tsv')" \
    "line-1	app	6	2	3	1	40	3	2026-11-02T08:00:00+00:00	2026-11-02T10:00:00+00:00
line-1	rom	1	1	0	0	100	60	2026-11-02T08:30:00+00:00	2026-11-02T08:31:00+00:00
line-2	app	5	3	2	0	60	0.44	2026-11-01T23:50:00+00:00	2026-11-02T11:06:00+00:00
line-2	rom	2	2	0	0	100	60	2026-11-02T12:00:00+00:00	2026-11-02T12:02:00+00:00
rework	app	10	0	10	0	0	66.67	2026-11-02T10:00:00+00:00	2026-11-02T10:09:00+00:00"
expect_eq "json top phases" "$(j -c '.groups[] | [.top_phases[] | [.phase, .count]]')" \
    '[["flash",2],["sync",1]]
[]
[["sync",1],["verify",1]]
[]
[["a",3],["b",2],["c",1],["d",1],["e",1]]'
expect_eq "json top codes" "$(j -c '.groups[] | [.top_errors[] | [.code, .count]]')" \
    '[["flash_write",1],["no_sync",1],["timeout",1]]
[]
[["no_sync",1],["verify_mismatch",1]]
[]
[["timeout",10]]'
expect_eq "json duplicates" "$(j '.duplicate_macs[] | .mac + " " + .profile + ": " +
    ([.boards[] | [.station, .run_id, .slot, .started_at, .ended_at] | join(" ")] | join(", "))')" \
    "02:00:00:00:00:01 app: line-1 r1 s1 2026-11-02T08:00:00+00:00 2026-11-02T08:01:00+00:00, line-2 r2 s1 2026-11-02T11:00:00+00:00 2026-11-02T11:01:00+00:00
02:00:00:00:00:09 app: line-2 r2 s2 2026-11-02T11:00:00+00:00 2026-11-02T11:01:00+00:00, line-2 r2 s2 2026-11-02T11:05:00+00:00 2026-11-02T11:06:00+00:00, line-2 r4 s1 2026-11-02T23:59:00+00:00 2026-11-03T00:00:00+00:00
02:00:00:00:00:07 rom: line-1 r1 s7 2026-11-02T08:30:00+00:00 2026-11-02T08:31:00+00:00, line-2 r3 s1 2026-11-02T12:00:00+00:00 2026-11-02T12:01:00+00:00"
# The same numbers in text and JSON: a group line rebuilt from the JSON matches the text's.
expect_eq "text vs json" "$(j '.groups[] | "\(.station) \(.profile) \(.boards) \(.passed) \(.failed) \(.interrupted)"')" \
    "$(sed -n '4,8p' "$T/text" | awk '{print $1, $2, $3, $4, $5, $6}')"

# Filters: one station (its groups; duplicates of MACs that passed there: 01 and 07, not 09),
# one profile.
fj() { "$ES" fleet "$URL" "${window[@]}" --json "$@"; }
expect_eq "--station line-1" "$(fj --station line-1 | jq -c '[.station, [.groups[] | .profile],
    [.duplicate_macs[] | .mac]]')" '["line-1",["app","rom"],["02:00:00:00:00:01","02:00:00:00:00:07"]]'
expect_eq "--profile rom" "$(fj --profile rom | jq -c '[.profile, [.groups[] | .station + " " +
    (.passed | tostring)], [.duplicate_macs[] | .mac]]')" '["rom",["line-1 1","line-2 2"],["02:00:00:00:00:07"]]'
expect_eq "--station line-2 --profile app, from 11:03" \
    "$(fj --station line-2 --profile app --since 2026-11-02T11:03 | jq -c '[.groups[] | [.boards, .passed]]')" \
    '[[1,1]]'
expect_eq "an offset: 10:30 to 12:01:30 at UTC+01:00 (4 line-2 app, 1 line-2 rom)" "$("$ES" fleet "$URL" --json \
    --since 2026-11-02T11:30+01:00 --until 2026-11-02T13:01:30+01:00 | jq -c '[.groups[] | .boards] | add')" 5
expect_eq "nobody" "$(fj --station nobody | jq -c '[.groups, .duplicate_macs]')" '[[],[]]'
"$ES" fleet "$URL" "${window[@]}" --station nobody >"$T/none"
expect_eq "nobody, text" "$(sed -n '2p;4p' "$T/none")" "no boards
duplicate MACs: none"

# The default window is today (local midnight to now): a board that just ended, not one from
# two days ago or the window above.
now=$(date -u +%s)
midnight=$(date -u -d "$(date -u +%F)" +%s)
ended=$((now - 1 > midnight ? now - 1 : midnight))
row today t1 s1 02:00:00:00:01:01 app pass - - "$(date -u -d @$((ended - 60)) '+%F %T')" "$(date -u -d @"$ended" '+%F %T')"
row today t0 s1 02:00:00:00:01:02 app pass - - "$(date -u -d @$((now - 2 * 86400)) '+%F %T')" "$(date -u -d @$((now - 2 * 86400 + 60)) '+%F %T')"
insert_rows
expect_eq "today" "$("$ES" fleet "$URL" --json | jq -c '[.since, [.groups[] | .station + " " + (.boards | tostring)]]')" \
    "[\"$(date -u -d @"$midnight" +%FT%T)+00:00\",[\"today 1\"]]"
expect_eq "yesterday to today" "$("$ES" fleet "$URL" --json --since yesterday --until today | jq -c '[.groups[] | .station]')" '[]'

# Read-only: a role that may only SELECT from boards gets the same document ...
pg_sql "create role viewer login password 'viewer-pw'"
pg_sql "grant select on boards to viewer"
viewer="postgresql://viewer:viewer-pw@/factory?host=$PGDIR"
"$ES" fleet "$viewer" "${window[@]}" --json >"$T/viewer.json" || fail "fleet as a SELECT-only role exited $?"
expect_eq "viewer" "$(jq -c 'del(.database)' "$T/viewer.json")" "$(jq -c 'del(.database)' "$T/json")"
# ... and fleet's own session sends nothing but reads, in a read-only transaction (the server
# logs every statement, tagged with the application name fleet sets).
pg_sql "alter system set log_statement = 'all'"
pg_sql "alter system set log_line_prefix = '[%a] '"
pg_sql "select pg_reload_conf()" >/dev/null
sleep 0.5
"$ES" fleet "$URL" "${window[@]}" >/dev/null
grep '^\[espstation fleet\] LOG:  \(statement\|execute\)' "$PGDIR/server.log" >"$T/statements" || true
grep -q 'SET default_transaction_read_only = on' "$T/statements" || fail "fleet did not make its session read-only"
grep -q 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' "$T/statements" || fail "fleet's transaction is not read-only"
expect_eq "fleet's statements" "$(sed 's/^[^:]*: *[a-z <>]*: //' "$T/statements" | awk '{print toupper($1)}' | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')" \
    "BEGINx1 COMMITx1 SELECTx3 SETx1 WITHx1 "

# Refusals: a bad time or window and a bad URL are usage (2); a wrong password is the
# database's (1), named without the password.
for args in "--since soon" "--since 2026-13-01" "--until -8x" "--since today --until yesterday" "--frob"; do
    rc=0
    # shellcheck disable=SC2086 # the words are the test
    "$ES" fleet "$URL" $args >/dev/null 2>"$T/err" || rc=$?
    expect_eq "fleet $args" "$rc" 2
done
rc=0
"$ES" fleet "${URL/station-pw/wrong-pw}" >/dev/null 2>"$T/err" || rc=$?
expect_eq "wrong password" "$rc" 1
grep -q "fleet database $shown: cannot connect: .*password authentication failed" "$T/err" ||
    fail "wrong password: $(cat "$T/err")"
if grep -q -e wrong-pw -e station-pw "$T/err"; then fail "the message shows the password"; fi
# A database without the tables: the database's error (1), and what to do.
pg_sql "create database empty owner station"
rc=0
"$ES" fleet "${URL/\/factory/\/empty}" >/dev/null 2>"$T/err" || rc=$?
expect_eq "no tables" "$rc" 1
expect_eq "no tables: message" "$(cat "$T/err")" "espstation: fleet database station@$PGDIR/empty: reading \
the boards per station and profile: relation \"boards\" does not exist; is it the fleet database? \
'espstation db init URL' creates the tables"
