#!/usr/bin/env bash
# `espstation ports --udev` end to end on the recorded sysfs tree (ESPSTATION_SYSFS_ROOT): the
# rules printed are exactly tests/udev/expected.rules, and --udev is refused outside `ports`.
#   ports-udev.sh ESPSTATION
set -euo pipefail
espstation=$1
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

ESPSTATION_SYSFS_ROOT=$here/sysfs "$espstation" ports --udev >"$out"
diff -u "$here/expected.rules" "$out"

# An empty tree: the header, a note in the file and on stderr, exit 0.
empty=$(mktemp -d)
mkdir -p "$empty/class/tty"
err=$(ESPSTATION_SYSFS_ROOT=$empty "$espstation" ports --udev 2>&1 >"$out")
rm -rf "$empty"
grep -q '^# No USB serial adapter found' "$out"
grep -q 'no USB serial adapter found under' <<<"$err"

# A missing tree fails with exit 1 and says where it looked.
rc=0
err=$(ESPSTATION_SYSFS_ROOT=/nonexistent "$espstation" ports --udev 2>&1 >/dev/null) || rc=$?
[ "$rc" -eq 1 ] || { echo "missing sysfs: exit $rc, expected 1"; exit 1; }
grep -q '/nonexistent/class/tty' <<<"$err"

rc=0
"$espstation" check --udev 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "check --udev: exit $rc, expected 2"; exit 1; }
echo "ports --udev: ok"
