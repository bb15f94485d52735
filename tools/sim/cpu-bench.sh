#!/usr/bin/env bash
# CPU cost of espsim under a realistic load: 1, 16 and 64 boards (half ESP32, half ESP8266) at
# --time-scale 1, each flashed back to back at 115200 by tests/sim/sim_load for SECONDS, and the
# simulator's CPU seconds / wall seconds from /proc/<pid>/stat (utime + stime) over that time.
# The target: 64 boards under 25 % of one core.
#
#   tools/sim/cpu-bench.sh [BUILD_DIR] [SECONDS] [COUNTS...]
#   e.g. tools/sim/cpu-bench.sh build 20 1 16 64
set -euo pipefail

build=${1:-build}
secs=${2:-20}
shift 2 2>/dev/null || shift $#
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 16 64)
espsim=$build/tools/sim/espsim
load=$build/tools/sim/sim_load
for exe in "$espsim" "$load"; do
    [ -x "$exe" ] || { echo "cpu-bench: $exe not built (cmake --build $build)" >&2; exit 2; }
done
tick=$(getconf CLK_TCK)
work=$(mktemp -d "${TMPDIR:-/tmp}/cpu-bench.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

cpu_ticks() { # utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat)
    local stat
    stat=$(cat "/proc/$1/stat")
    stat=${stat##*) } # the command name may contain spaces; fields restart after ") "
    set -- $stat
    echo $(( ${12} + ${13} ))
}

printf '%-7s %-10s %-10s %-12s %s\n' boards cpu_s wall_s "cpu/wall" "blocks/board (KiB/s)"
for n in "${counts[@]}"; do
    bench=$work/bench$n.txt
    : > "$bench"
    for ((i = 0; i < n; i++)); do
        if (( i % 2 )); then echo esp8266 >> "$bench"; else echo esp32 >> "$bench"; fi
    done
    "$espsim" --bench "$bench" --dir "$work/dir$n" --time-scale 1 > "$work/out$n.jsonl" \
        2> "$work/err$n.txt" &
    pid=$!
    for _ in $(seq 600); do
        grep -q '"ready":true' "$work/out$n.jsonl" 2>/dev/null && break
        sleep 0.1
    done
    grep -q '"ready":true' "$work/out$n.jsonl" || { echo "espsim did not start" >&2; cat "$work/err$n.txt" >&2; exit 1; }
    targets=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    if "port" in o:
        print("%s:%s" % (o["chip"], o["port"]))
' "$work/out$n.jsonl")
    c0=$(cpu_ticks "$pid")
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$load" --seconds "$secs" $targets > "$work/load$n.txt"
    t1=$(date +%s.%N)
    c1=$(cpu_ticks "$pid")
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
    summary=$(tail -1 "$work/load$n.txt")
    python3 - "$n" "$c0" "$c1" "$t0" "$t1" "$tick" "$summary" <<'PY'
import sys
n, c0, c1, t0, t1, tick = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
cpu = (c1 - c0) / tick
wall = t1 - t0
blocks = sys.argv[7].split(",")[1].strip()
print("%-7d %-10.2f %-10.2f %-12s %s" % (n, cpu, wall, "%.1f %%" % (100 * cpu / wall), blocks))
PY
done
