#!/usr/bin/env bash
# The server stopped in the middle of a run and started again: the station flashes on, says the
# database went away (journal: a "down" line), reconnects, and every record arrives exactly
# once: as many board rows as reports, no key twice, an empty outbox.
. "$(dirname "$0")/publish_lib.sh"

pg_start
pg_schema_init
make_profile p.yaml
# 16 boards: 8 quick ones, and 8 whose flash writes are slow (espsim's slow:flash_defl_data) and
# finish seconds later, while the server is down. espsim runs on its own here (--simulate takes
# no faults); its stdin is this script's fd 7, so it ends with the script whatever happens.
boards=()
for _ in $(seq 1 8); do boards+=(--board esp32); done
for _ in $(seq 1 8); do boards+=(--board esp32,fault=slow:flash_defl_data:2000); done
exec 7> >(exec "$SIM" --exit-on-eof --dir "$T/sim" --time-scale 0.5 "${boards[@]}" >sim.json)
for _ in $(seq 1 300); do
    grep -q '"ready":true' sim.json 2>/dev/null && break
    sleep 0.1
done
grep -q '"ready":true' sim.json || fail "espsim did not start"
ESPSTATION_PUBLISH_GRACE_MS=120000 "$ES" run p.yaml --reports "$T/reports" --lines \
    --timeout-scale "$TSCALE" --port "$T/sim/ttySIM*" --publish "$URL" --station o \
    >out.txt 2>err.txt &
pid=$!
# The quick boards are in the database: the outage comes in the middle.
for _ in $(seq 1 600); do
    [ "$(pg_sql 'select count(*) from boards')" -ge 8 ] && break
    sleep 0.1
done
pg_stop
sleep 5
in_outbox=$(outbox_count o)
pg_start
wait "$pid" || fail "the run failed: $(tail -3 err.txt)"
dir=$(run_dir_of out.txt)
reports=$(ls "$dir" | grep -c '^[0-9a-f-]*\.json$')
expect_eq "reports" "$reports" 16
expect_eq "rows, distinct keys" "$(pg_sql 'select count(*), count(distinct record_key) from boards')" \
    "16|16"
expect_eq "outbox after the run" "$(outbox_count o)" 0
expect_eq "run row" "$(pg_sql 'select total, passed from runs')" "16|16"
grep -q '"event":"publish","state":"down"' "$dir/journal.jsonl" || fail "the outage was not seen"
grep -q 'publish: .*o/.*records wait' err.txt ||
    grep -q 'boards are flashed on, their records wait' err.txt || fail "the outage was not said"
echo "records held during the outage: $in_outbox"
