#!/usr/bin/env bash
# A 16-board mixed run of espstation under valgrind: no leaks, no invalid accesses, and every
# libuv handle closed (espstation checks uv_loop_close itself). Not run in sanitizer builds.
#   tests/integration/valgrind.sh ESPSTATION ESPSIM MKIMAGE
set -euo pipefail
espstation=$1 espsim=$2 mkimage=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
h8=$("$mkimage" --chip esp8266 --size 131072 --seed 9 -o a8266.bin 2>/dev/null | cut -d' ' -f1)
h32=$("$mkimage" --chip esp32 --size 131072 --seed 10 -o a32.bin 2>/dev/null | cut -d' ' -f1)
cat >p8266.yaml <<EOT
chip: esp8266
flash_baud: 460800
flash: {mode: dio, freq: 40m, size: detect}
images: [{offset: 0x0, file: a8266.bin, sha256: $h8}]
EOT
cat >p32.yaml <<EOT
chip: esp32
flash_baud: 921600
erase: all
flash: {mode: dio, freq: 40m, size: detect}
images: [{offset: 0x1000, file: a32.bin, sha256: $h32}]
EOT
ESPSTATION_ESPSIM=$espsim valgrind -q --leak-check=full --show-leak-kinds=all \
    --errors-for-leak-kinds=all --error-exitcode=9 \
    "$espstation" run p8266.yaml p32.yaml --simulate 16 --sim-time-scale 0.1 --timeout-scale 4 \
    --lines --reports reports >run.log 2>valgrind.log || {
    status=$?
    tail -20 run.log
    cat valgrind.log
    echo "valgrind run failed with status $status"
    exit 1
}
grep -q "16 of 16 boards passed" run.log || {
    tail -20 run.log
    exit 1
}
echo "16 of 16 boards passed under valgrind: no leaks, no errors"
