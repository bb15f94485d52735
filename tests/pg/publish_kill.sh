#!/usr/bin/env bash
# The station SIGKILLed with records in its outbox (the database was down), then the database
# back and the station started again: the old records are delivered first, once each. A record
# delivered and then found again in the outbox (a kill between the insert and the unlink) lands
# once: the insert is a no-op the second time. A record the database refuses for its content
# (here a start time that is no time) is set aside as NAME.bad, alone: the boards sent with it in
# one statement land.
. "$(dirname "$0")/publish_lib.sh"

pg_start
pg_schema_init
pg_stop
make_profile p.yaml
# A long grace: the station is still waiting for the database when it is killed.
# Not through station(): $! must be espstation itself, not a subshell.
ESPSTATION_PUBLISH_GRACE_MS=600000 "$ES" run p.yaml --reports "$T/reports" --lines \
    --timeout-scale "$TSCALE" --simulate 4 --sim-time-scale 0.05 --publish "$URL" --station k \
    >out1.txt 2>err1.txt &
pid=$!
# Every board recorded, and the run's two records (its start and its end): the station now only
# waits for the database.
for _ in $(seq 1 600); do
    [ "$(outbox_count k)" -ge 6 ] && break
    sleep 0.1
done
sleep 0.2
expect_eq "records before the kill" "$(outbox_count k)" 6
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
dir1=$(ls -d reports/2*)
expect_eq "reports of the killed run" "$(ls "$dir1" | grep -c '^[0-9a-f-]*\.json$')" 4
saved=$(ls reports/outbox/k/*.json | sed -n 2p)
cp "$saved" saved-record.json
broken=$(ls reports/outbox/k/*.json | sed -n 4p)
jq -c '.started_at = "not a time"' "$broken" >broken.tmp && mv broken.tmp "$broken"

pg_start
ESPSTATION_PUBLISH_GRACE_MS=30000 station p.yaml --simulate 1 --sim-time-scale 0.05 \
    --publish "$URL" --station k >out2.txt 2>err2.txt || fail "the restart failed"
grep -q '6 records from earlier runs wait' err2.txt || fail "the old records are not announced"
expect_eq "outbox after the restart" "$(outbox_count k)" 0
expect_eq "records set aside" "$(ls reports/outbox/k/ | grep -c '\.json\.bad$')" 1
[ -f "$broken.bad" ] || fail "the record set aside is not the broken one"
grep -q "refused record" err2.txt || fail "the refused record is not named on stderr"
expect_eq "boards" "$(pg_sql 'select count(*), count(distinct record_key) from boards')" "4|4"
expect_eq "boards of the killed run" \
    "$(pg_sql "select count(*) from boards where run_id = '$(basename "$dir1")'")" 3
# In order: the killed run's boards before the new run's.
expect_eq "order" "$(pg_sql "select run_id from boards order by id desc limit 1")" \
    "$(basename "$(run_dir_of out2.txt)")"
# The killed run's row, from its latest record (not the older one at its start).
expect_eq "killed run's row" \
    "$(pg_sql "select total, passed, ended_at is not null from runs where run_id = '$(basename "$dir1")'")" \
    "4|4|t"

# A record delivered, then back in the outbox: sent again, lands once.
cp saved-record.json "$saved"
ESPSTATION_PUBLISH_GRACE_MS=30000 station p.yaml --simulate 1 --sim-time-scale 0.05 \
    --publish "$URL" --station k >out3.txt 2>err3.txt || fail "the third run failed"
expect_eq "outbox after the re-send" "$(outbox_count k)" 0
expect_eq "boards after the re-send" "$(pg_sql 'select count(*), count(distinct record_key) from boards')" "5|5"
grep -q '"event":"published","kind":"board","key":"[^"]*","inserted":false' \
    "$(run_dir_of out3.txt)/journal.jsonl" || fail "the second delivery is not said to be one"
