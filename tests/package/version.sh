#!/usr/bin/env bash
# `espstation --version` (issue 15 #7): the first line is `git describe` of the source tree (or
# the project version outside a git checkout), then one line per library and the stub package.
#   version.sh ESPSTATION SOURCE_DIR PROJECT_VERSION
set -euo pipefail
espstation=$1 src=$2 project_version=$3
fail() { echo "version.sh: $*" >&2; echo "--- espstation --version:" >&2; echo "$out" >&2; exit 1; }

out=$("$espstation" --version)
first=$(head -n 1 <<<"$out")

if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    # The build reads git describe at configure time: the commit must be this one. Whether the
    # tree was dirty then and is now may differ (an edit since), so -dirty is compared apart.
    want=$(git -C "$src" describe --tags --always)
    [ "$first" = "espstation $want" ] || [ "$first" = "espstation $want-dirty" ] ||
        fail "first line '$first', git describe says '$want' (reconfigure after a commit?)"
else
    [ "$first" = "espstation $project_version" ] || fail "first line '$first', want the project version"
fi

# Each library by name, with a version that starts with a digit (OpenSSL names itself).
for lib in libuv libserialport libyaml OpenSSL zlib jansson libpq; do
    grep -Eq "^$lib [0-9]+\.[0-9]+" <<<"$out" || fail "no '$lib <version>' line"
done
# The stub package as package.json names it.
pkg_json=$src/npm/node_modules/esptool-js/package.json
if [ -f "$pkg_json" ]; then
    stub_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pkg_json" | head -n 1)
    grep -Fxq "stubs esptool-js $stub_version (esp-flasher-stub)" <<<"$out" ||
        fail "no 'stubs esptool-js $stub_version (esp-flasher-stub)' line"
fi
[ "$(wc -l <<<"$out")" -eq 9 ] || fail "expected 9 lines"
echo "version.sh: ok ($first)"
