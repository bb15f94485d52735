#!/usr/bin/env bash
# Checks espstation@.service with systemd's own tools, as Debian's systemd package ships them:
#   verify-unit.sh ESPSTATION_BINARY UNIT SYSUSERS
# systemd-analyze verify loads the unit as systemd would (it needs no running systemd, so it
# works in a container where systemd is not PID 1), but it refuses a unit whose ExecStart binary
# does not exist, and a template (espstation@.service) is checked as an instance. So the unit is
# copied as espstation@line1.service into a scratch directory with /usr/bin/espstation replaced by
# the built binary. verify exits 0 even on an unknown key or a bad value ("ignoring"), so any
# output at all fails the check; a deliberately broken copy proves the tool does report those.
set -euo pipefail
bin=$1 unit=$2 sysusers=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "verify-unit: $*" >&2; exit 1; }

sed "s|/usr/bin/espstation|$bin|" "$unit" >"$tmp/espstation@line1.service"
grep -q "^ExecStart=$bin run " "$tmp/espstation@line1.service" || fail "ExecStart is not /usr/bin/espstation"
out=$(systemd-analyze verify --man=no "$tmp/espstation@line1.service" 2>&1) ||
    fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify complained: $out"

mkdir "$tmp/broken"
sed "s|^ProtectSystem=strict|ProtectSystem=stricter|" "$tmp/espstation@line1.service" \
    >"$tmp/broken/espstation@line1.service"
out=$(systemd-analyze verify --man=no "$tmp/broken/espstation@line1.service" 2>&1) || true
grep -q "ProtectSystem\|protect system" <<<"$out" || fail "a broken unit went unnoticed: $out"

# What issue 15 asks of the unit, line by line (the values systemd would otherwise ignore).
for want in '^User=espstation$' '^SupplementaryGroups=dialout$' '^Restart=on-failure$' \
    '^ProtectSystem=strict$' '^ReadWritePaths=%S/espstation/%i$' '^StateDirectory=espstation/%i$' \
    '^DevicePolicy=closed$' '^DeviceAllow=char-ttyUSB rw$' '^DeviceAllow=char-ttyACM rw$' \
    '^NoNewPrivileges=yes$' '^ExecStart=.* run /etc/espstation/%i.yaml --continuous --lines '; do
    grep -q -- "$want" "$unit" || fail "$unit has no line matching $want"
done

# The sysusers.d snippet: parsed and applied to an empty root, without touching this system.
mkdir -p "$tmp/root/etc"
out=$(systemd-sysusers --dry-run --root="$tmp/root" "$(realpath "$sysusers")" 2>&1) ||
    fail "systemd-sysusers rejected $sysusers: $out"
grep -q "Creating user 'espstation'" <<<"$out" || fail "sysusers creates no user espstation: $out"
echo "espstation@.service: verified"
