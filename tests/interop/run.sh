#!/usr/bin/env bash
# Runs the esptool-js interop tests with node's own test runner.
#   tests/interop/run.sh [ESPSIM] [test files...]     (default: esptool-js.test.mjs)
# ESPSIM may also come from the environment. Fails, saying what to do, when node or the pinned
# npm packages are missing: the interop proof must never pass by not running.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if ! command -v node >/dev/null 2>&1; then
    echo "interop: node is not installed; run tools/setup-deps.sh" >&2
    exit 1
fi
if [ ! -f "$root/npm/node_modules/esptool-js/package.json" ]; then
    echo "interop: $root/npm/node_modules/esptool-js is missing; run tools/setup-deps.sh" \
        "(it runs npm ci --prefix npm from the pinned lockfile)" >&2
    exit 1
fi
if [ $# -ge 1 ] && [ "${1%.mjs}" = "$1" ]; then
    export ESPSIM=$1
    shift
fi
if [ $# -eq 0 ]; then
    set -- "$here/esptool-js.test.mjs"
fi
exec node --test --test-reporter=spec "$@"
