#!/usr/bin/env bash
# Two stations flashing a board with the same MAC (espsim's default seed gives each bench the
# same MACs): the second is flagged, in its report ("fleet_duplicate") and in the database
# (duplicate_of); by default it still passes (warn), and with duplicate_mac: fail it is refused.
# A board flashed while the database was away is flagged when its record is inserted.
. "$(dirname "$0")/publish_lib.sh"

pg_start
pg_schema_init
make_profile warn.yaml
make_profile fail.yaml "duplicate_mac: fail"
run1() { # STATION PROFILE [espstation args]: one board, its report's path in $report
    local st=$1 prof=$2
    shift 2
    set +e
    ESPSTATION_PUBLISH_GRACE_MS=${GRACE:-30000} station "$prof" --simulate 1 --sim-time-scale 0.3 \
        --station "$st" "$@" >"out-$st.txt" 2>"err-$st.txt"
    rc=$?
    set -e
    report=$(ls "$(run_dir_of "out-$st.txt")"/*.json | grep -v run.json)
}

run1 st-a warn.yaml --publish "$URL"
expect_eq "first station" "$rc" 0
mac=$(jq -r .mac "$report")
expect_eq "first board not flagged" "$(jq -c .fleet_duplicate "$report")" null

run1 st-b warn.yaml --publish "$URL"
expect_eq "second station, warn: exit" "$rc" 0
expect_eq "second board's MAC" "$(jq -r .mac "$report")" "$mac"
expect_eq "second board flagged in its report" \
    "$(jq -r '[.result, .fleet_duplicate.station, .fleet_duplicate.run_id] | join("|")' "$report")" \
    "pass|st-a|$(pg_sql "select run_id from runs where station = 'st-a'")"
expect_eq "second board flagged in the database" \
    "$(pg_sql "select b.station, a.station from boards b join boards a on a.id = b.duplicate_of")" \
    "st-b|st-a"
grep -q '"event":"fleet_duplicate","when":"before_flash"' "$(dirname "$report")/journal.jsonl" ||
    fail "the journal does not note the duplicate"

run1 st-c fail.yaml --publish "$URL"
expect_eq "duplicate_mac: fail: exit" "$rc" 1
expect_eq "refused board's report" \
    "$(jq -r '[.result, .error.code, .fleet_duplicate.station] | join("|")' "$report")" \
    "fail|duplicate_mac|st-a"
jq -r .error.message "$report" | grep -q "already passed profile pubtest on station st-a" ||
    fail "the message does not say where: $(jq -r .error.message "$report")"
expect_eq "refused board's row" "$(pg_sql "select result, error_code from boards where station = 'st-c'")" \
    "fail|duplicate_mac"
echo "refused board: $(jq '[.images[].written_bytes] | add' "$report") bytes written before the answer"

# The database away while a board is flashed: its record is flagged on insert.
pg_stop
GRACE=500 run1 st-d warn.yaml --publish "$URL"
expect_eq "offline board" "$rc" 0
expect_eq "offline board's report" "$(jq -c .fleet_duplicate "$report")" null
pg_start
run1 st-d warn.yaml --publish "$URL"
expect_eq "st-d's rows flagged" \
    "$(pg_sql "select count(*) from boards where station = 'st-d' and duplicate_of is not null")" 2
grep -q '"event":"fleet_duplicate","when":"on_insert"' "$(dirname "$report")/journal.jsonl" ||
    fail "the insert's duplicate is not noted"
grep -q "WARNING: board st-d/.*already passed this profile on station st-a" err-st-d.txt ||
    fail "no warning for the board flagged on insert: $(cat err-st-d.txt)"
