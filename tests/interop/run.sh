#!/usr/bin/env bash
# Runs the esptool-js interop tests with node's own test runner.
#   tests/interop/run.sh [ESPSIM] [test files...]     (default: esptool-js.test.mjs)
# ESPSIM may also come from the environment; INTEROP_PACKAGES=esptool-js or esptool-js-legacy runs
# one package's bench only (default: both). Fails, saying what to do, when node or either pinned
# npm package is missing: the interop proof must never pass by not running.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if ! command -v node >/dev/null 2>&1; then
    echo "interop: node is not installed; run tools/setup-deps.sh" >&2
    exit 1
fi
# Both pinned packages: esptool-js 0.7.0 and esptool-js-legacy (npm:esptool-js@0.6.1).
for pkg in esptool-js esptool-js-legacy; do
    if [ ! -f "$root/npm/node_modules/$pkg/package.json" ]; then
        echo "interop: $root/npm/node_modules/$pkg is missing; run tools/setup-deps.sh" \
            "(it runs npm ci --prefix npm from the pinned lockfile)" >&2
        exit 1
    fi
done
if [ $# -ge 1 ] && [ "${1%.mjs}" = "$1" ]; then
    export ESPSIM=$1
    shift
fi
if [ $# -eq 0 ]; then
    set -- "$here/esptool-js.test.mjs"
fi
exec node --test --test-reporter=spec "$@"
