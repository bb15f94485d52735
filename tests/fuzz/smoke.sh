#!/bin/sh
# Runs every libFuzzer target for a few seconds and fails on any finding.
#   usage: tests/fuzz/smoke.sh BUILD_DIR SECONDS
# BUILD_DIR was configured with CC=clang -DESPSTATION_FUZZ=ON and built. Each target starts
# from a copy of its checked-in corpus in a temporary directory, so the corpus is not grown.
# Prints one line per target: fuzz <name>: <execs> execs, cov <N>, ft <M>, <S> s
# On a crash the reproducer is kept under BUILD_DIR/fuzz-artifacts/<name>/.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
case $secs in
'' | *[!0-9]*)
    echo "$0: SECONDS must be a whole number, got '$secs'" >&2
    exit 2
    ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/es-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

status=0
for name in slip rom profile; do
    bin=$build/tests/fuzz/fuzz_$name
    if [ ! -x "$bin" ]; then
        echo "fuzz $name: $bin not found; configure with CC=clang -DESPSTATION_FUZZ=ON and build" >&2
        status=1
        continue
    fi
    corpus=$tmp/corpus-$name
    arts=$tmp/artifacts-$name
    mkdir -p "$corpus" "$arts"
    cp "$here/corpus/$name/"* "$corpus/"
    log=$tmp/$name.log
    start=$(date +%s)
    "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$arts/" \
        "$corpus" >"$log" 2>&1
    rc=$?
    elapsed=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    # The last status line, e.g. "#123456 DONE cov: 312 ft: 1024 corp: 57/2Kb ...".
    cov=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(grep -E '^#[0-9]+.*ft: ' "$log" | tail -n 1 | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    if [ $rc -ne 0 ] || [ -z "$execs" ]; then
        echo "fuzz $name: FAILED (exit $rc); last lines of the libFuzzer log:" >&2
        tail -n 40 "$log" >&2
        if ls "$arts"/* >/dev/null 2>&1; then
            mkdir -p "$build/fuzz-artifacts/$name"
            cp "$arts"/* "$build/fuzz-artifacts/$name/"
            echo "fuzz $name: reproducer(s) kept in $build/fuzz-artifacts/$name/;" \
                "rerun with: $bin <file>" >&2
        fi
        status=1
        continue
    fi
    echo "fuzz $name: $execs execs, cov ${cov:-?}, ft ${ft:-?}, $elapsed s"
done
exit $status
