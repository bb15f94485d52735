#!/usr/bin/env bash
# A simulated 16-board run publishes 16 board rows and its run row, and each row says what the
# board's report says: MAC, result, profile SHA-256, record key (station/run/slot/mac/start),
# start and end. The outbox is empty afterwards.
. "$(dirname "$0")/publish_lib.sh"

pg_start
pg_schema_init
make_profile p.yaml
station p.yaml --simulate 16 --sim-time-scale 0.05 --publish "$URL" --station line-1 \
    >out.txt 2>err.txt || fail "the run failed: $(tail -3 err.txt)"
dir=$(run_dir_of out.txt)
run_id=$(basename "$dir")
expect_eq "board rows" "$(pg_sql 'select count(*) from boards')" 16
expect_eq "run row" "$(pg_sql "select total, passed, failed, station from runs where run_id = '$run_id'")" \
    "16|16|0|line-1"
expect_eq "run ended" "$(pg_sql "select ended_at is not null from runs")" t
expect_eq "outbox after the run" "$(outbox_count line-1)" 0
n=0
for f in "$dir"/*.json; do
    [ "$(basename "$f")" = run.json ] && continue
    mac=$(jq -r .mac "$f")
    want=$(jq -r --arg st line-1 --arg run "$run_id" \
        '[.result, .profile.sha256, .chip.name, ($st + "/" + $run + "/" + .port + "/" + .mac), .start, .end] | join("|")' "$f")
    got=$(pg_sql "select result, profile_sha256, chip, record_key, \
        to_char(started_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
        to_char(ended_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') \
        from boards where mac = '$mac'")
    # record_key ends in the start in ms; the rest must match the report exactly.
    expect_eq "row of $mac" "$(echo "$got" | sed 's#/[0-9]*|#|#')" "$want"
    expect_eq "report of $mac in the row" \
        "$(pg_sql "select report->>'mac', report->'profile'->>'name' from boards where mac = '$mac'")" \
        "$mac|pubtest"
    n=$((n + 1))
done
expect_eq "reports checked" "$n" 16
expect_eq "run.json's station" "$(jq -r .station "$dir/run.json")" line-1
grep -q '"event":"published".*"latency_ms"' "$dir/journal.jsonl" || fail "no published lines"
