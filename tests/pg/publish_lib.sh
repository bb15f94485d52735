# Sourced by the publishing tests (tests/pg/publish_*.sh): lib.sh's server and binaries, plus a
# profile and images made with mkimage, a station run against espsim, and the outbox's files.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MKIMAGE=$ES_BUILD/tools/mkimage/mkimage
export ESPSTATION_ESPSIM=$SIM
# Sanitizer builds are slower: the same multiplier the integration tests use.
TSCALE=${ESPSTATION_TIMEOUT_MULTIPLIER:-1}
cd "$T"

# The fleet schema, as `espstation db init URL` will make it (one place to change at merge).
pg_schema_init() {
    "$ES" db init "$URL" >/dev/null
}

# make_profile FILE [YAML LINE]...: an ESP32 profile flashing one 64 KiB image.
make_profile() {
    local file=$1
    shift
    [ -f app.bin ] || "$MKIMAGE" --chip esp32 --size 65536 --seed 3 -o app.bin >app.sha 2>/dev/null
    {
        echo "name: pubtest"
        echo "chip: esp32"
        echo "flash: {mode: dio, freq: 40m, size: detect}"
        for line in "$@"; do echo "$line"; done
        echo "images: [{offset: 0x1000, file: app.bin, sha256: $(cut -d' ' -f1 app.sha)}]"
    } >"$file"
}

# station ARGS...: espstation run with reports in $T/reports, plain lines on stdout.
station() {
    "$ES" run --reports "$T/reports" --lines --timeout-scale "$TSCALE" "$@"
}

# outbox_count STATION: records waiting in that station's outbox.
outbox_count() {
    find "$T/reports/outbox/$1" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l
}

# The run directory the last run named on its stdout (FILE): "reports: DIR".
run_dir_of() {
    sed -n 's/^reports: //p' "$1" | tail -1
}
