#!/usr/bin/env bash
# A wrong password and a missing database: each says so at start in one clear line on stderr
# and in the journal (naming the database, never the password), the boards are flashed anyway
# (exit 0, every report written), and the records wait in the outbox: two boards and the run's
# two records (at its start and its end) per run. With the right URL the next start delivers
# them all.
. "$(dirname "$0")/publish_lib.sh"

make_profile p.yaml
# Bad input before any board: exit 2. A malformed URL, and two profiles naming two databases.
set +e
station p.yaml --simulate 1 --publish 'postgresql://a:secret@db/f?nosuch=1' 2>bad1.txt >/dev/null
expect_eq "a malformed --publish" "$?" 2
grep -q "^espstation: --publish: the database URL is not valid: invalid URI query parameter" bad1.txt ||
    fail "a malformed URL: $(cat bad1.txt)"
! grep -q secret bad1.txt || fail "the password was shown"
"$MKIMAGE" --chip esp8266 --size 65536 --seed 4 -o app8266.bin >app8266.sha 2>/dev/null
printf 'chip: esp8266\npublish: postgresql://a@db1/f\nimages: [{offset: 0x0, file: app8266.bin, sha256: %s}]\n' \
    "$(cut -d' ' -f1 app8266.sha)" >p8266.yaml
make_profile p32.yaml "publish: postgresql://a@db2/f"
station p8266.yaml p32.yaml --simulate 1 2>bad2.txt >/dev/null
expect_eq "two databases" "$?" 2
set -e
grep -q 'p8266.yaml:2:10 and .*p32.yaml:4:10 name different publish databases' bad2.txt ||
    fail "two databases: $(cat bad2.txt)"
[ ! -d reports ] || fail "bad input touched the reports directory"

pg_start
pg_schema_init
export ESPSTATION_PUBLISH_GRACE_MS=1000
bad_pw=${URL/station-pw/not-the-password}
no_db=${URL/factory/nowhere}

station p.yaml --simulate 2 --sim-time-scale 0.05 --publish "$bad_pw" --station st \
    >out1.txt 2>err1.txt || fail "a wrong password failed the run: $(tail -3 err1.txt)"
grep -q 'publish: cannot connect to station@.*/factory: .*password authentication failed' err1.txt ||
    fail "no clear message for the wrong password: $(cat err1.txt)"
expect_eq "reports with a wrong password" "$(ls "$(run_dir_of out1.txt)" | grep -c '^[0-9a-f-]*\.json$')" 2
expect_eq "outbox after a wrong password" "$(outbox_count st)" 4
grep -q '"event":"publish","state":"down".*password authentication failed' \
    "$(run_dir_of out1.txt)/journal.jsonl" || fail "the journal does not say why"

ESPSTATION_PUBLISH=$no_db station p.yaml --simulate 2 --sim-time-scale 0.05 --station st \
    >out2.txt 2>err2.txt || fail "a missing database failed the run: $(tail -3 err2.txt)"
grep -q 'publish: cannot connect to station@.*/nowhere: .*database "nowhere" does not exist' err2.txt ||
    fail "no clear message for the missing database: $(cat err2.txt)"
grep -q '4 records from earlier runs wait' err2.txt || fail "the earlier records are not announced"
expect_eq "outbox after a missing database" "$(outbox_count st)" 8
grep -q '8 records wait in .* for the next start' err2.txt || fail "the end does not say what waits"
if grep -q -e not-the-password -e station-pw err1.txt err2.txt out1.txt out2.txt \
    reports/*/journal.jsonl reports/*/run.json; then
    fail "a password was shown"
fi
expect_eq "rows while the URL is wrong" "$(pg_sql 'select count(*) from boards')" 0

# A schema not initialised is a clear error too (another database, empty).
pg_sql "create database empty owner station" >/dev/null
ESPSTATION_PUBLISH=${URL/factory/empty} station p.yaml --simulate 1 --sim-time-scale 0.05 \
    --station other >out3.txt 2>err3.txt || fail "an empty database failed the run"
grep -q 'has no espstation schema: run `espstation db init URL`' err3.txt ||
    fail "no clear message for a database without the schema: $(cat err3.txt)"

# The right URL: everything waiting goes, in order, once.
station p.yaml --simulate 2 --sim-time-scale 0.05 --publish "$URL" --station st \
    >out4.txt 2>err4.txt || fail "the good run failed"
expect_eq "outbox after the good run" "$(outbox_count st)" 0
expect_eq "board rows" "$(pg_sql 'select count(*), count(distinct record_key) from boards')" "6|6"
expect_eq "run rows" "$(pg_sql "select count(*) from runs where station = 'st' and ended_at is not null")" 3
