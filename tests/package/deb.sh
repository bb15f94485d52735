#!/usr/bin/env bash
# The Debian package (issue 15 #1-#3): builds the .debs with CPack in the build directory, unpacks
# them with dpkg -x into a scratch directory, and checks the installed layout: Depends from
# dpkg-shlibdeps, the files in place, man pages that render without warnings, and
# `espstation check` and a 4-board `espstation run --simulate` from the unpacked tree, with the
# stubs and espsim found next to the unpacked binary (not in the build tree).
#   deb.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
scratch=$(mktemp -d)
keep=0
trap '[ "$keep" -eq 1 ] || rm -rf "$scratch"' EXIT
fail() {
    echo "deb.sh: FAIL: $*" >&2
    keep=1
    echo "deb.sh: scratch directory kept: $scratch" >&2
    exit 1
}
# No leftovers from the environment may point into the build tree.
unset ESPSTATION_STUB_DIR ESPSTATION_ESPSIM

# 1. Build the packages. A private output directory, so that a test running in parallel in the
#    same build tree (or an older .deb) is never picked up.
(cd "$build" && cpack -G DEB -B "$scratch/cpack" >"$scratch/cpack.log" 2>&1) ||
    { cat "$scratch/cpack.log" >&2; fail "cpack -G DEB"; }
deb=$(ls "$scratch"/cpack/espstation_*.deb 2>/dev/null | head -n 1)
sim_deb=$(ls "$scratch"/cpack/espstation-sim_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "no espstation_*.deb in $(ls "$scratch/cpack")"
[ -n "$sim_deb" ] || fail "no espstation-sim_*.deb in $(ls "$scratch/cpack")"
echo "deb.sh: built $(basename "$deb") $(basename "$sim_deb")"

# 2. Control fields: Depends as dpkg-shlibdeps wrote it.
depends=$(dpkg-deb -f "$deb" Depends)
echo "deb.sh: Depends: $depends"
for lib in libuv1 libserialport0 libyaml-0-2 libssl3 libjansson4 zlib1g; do
    grep -Eq "(^|, )$lib( |,|$)" <<<"$depends" || fail "Depends lacks $lib"
done
for field in Maintainer Description Section; do
    [ -n "$(dpkg-deb -f "$deb" "$field")" ] || fail "no $field field"
done
[ "$(dpkg-deb -f "$deb" Package)" = espstation ] || fail "package name is not espstation"
[ -n "$(dpkg-deb -f "$sim_deb" Depends)" ] || fail "espstation-sim has no Depends"

# 3. The files, unpacked.
root=$scratch/root
dpkg -x "$deb" "$root"
dpkg -x "$sim_deb" "$root"
for f in usr/bin/espstation usr/bin/espsim \
    usr/share/espstation/stubs/esp8266.json usr/share/espstation/stubs/esp32.json \
    usr/share/doc/espstation/copyright usr/share/doc/espstation-sim/copyright \
    usr/share/doc/espstation/examples/nodemcu-micropython.yaml \
    usr/share/doc/espstation/examples/esp32-micropython.yaml \
    usr/share/doc/espstation/examples/images/esp8266-demo.bin \
    usr/share/man/man1/espstation.1.gz usr/share/man/man5/espstation-profile.5.gz \
    usr/share/bash-completion/completions/espstation \
    usr/lib/systemd/system/espstation@.service usr/lib/sysusers.d/espstation.conf \
    usr/share/espstation/schema/report.schema.json usr/share/espstation/schema/run.schema.json \
    usr/share/espstation/schema/journal.schema.json usr/share/espstation/schema/profile.schema.json; do
    [ -e "$root/$f" ] || fail "$f is not in the package"
done
grep -q '^ExecStart=/usr/bin/espstation ' "$root/usr/lib/systemd/system/espstation@.service" ||
    fail "the unit's ExecStart does not name /usr/bin/espstation"
# The unit runs as user espstation: the package creates it when installed.
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst 2>/dev/null | grep -q 'systemd-sysusers' ||
    fail "the package's postinst does not create the espstation user"
dpkg-deb -c "$deb" | grep -q ' \./usr/bin/espsim$' && fail "espsim is in the espstation package"
grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' \
    "$root/usr/share/doc/espstation/copyright" || fail "copyright is not machine-readable"
grep -q '^Files: usr/share/espstation/stubs/\*' "$root/usr/share/doc/espstation/copyright" ||
    fail "copyright says nothing of the stubs"

# 4. Man pages: they render, without a warning from man or groff.
for page in man1/espstation.1.gz man5/espstation-profile.5.gz; do
    f=$root/usr/share/man/$page
    warnings=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
    [ -z "$warnings" ] || fail "man --warnings $page: $warnings"
    warnings=$(zcat "$f" | groff -man -ww -z 2>&1)
    [ -z "$warnings" ] || fail "groff -ww $page: $warnings"
    [ "$(MANWIDTH=80 man -l "$f" 2>/dev/null | wc -l)" -gt 50 ] || fail "$page renders short"
done

# 5. The unpacked espstation: check, then a 4-board simulated run (2 ESP8266 + 2 ESP32).
bin=$root/usr/bin/espstation
examples=$root/usr/share/doc/espstation/examples
"$bin" check "$examples/nodemcu-micropython.yaml" >"$scratch/check.out" ||
    { cat "$scratch/check.out"; fail "espstation check exited $?"; }
grep -q esp8266-demo.bin "$scratch/check.out" || fail "check printed no plan"
scale=${ESPSTATION_TIMEOUT_MULTIPLIER:-1}
[ -n "$scale" ] || scale=1
"$bin" run "$examples/nodemcu-micropython.yaml" "$examples/esp32-micropython.yaml" \
    --simulate 4 --sim-time-scale 0 --lines --timeout-scale "$scale" \
    --reports "$scratch/reports" >"$scratch/run.out" 2>&1 ||
    { cat "$scratch/run.out"; fail "espstation run --simulate 4 exited $?"; }
run_dir=$(sed -n 's/^reports: //p' "$scratch/run.out")
[ -d "$run_dir" ] || fail "no run directory in the output"
n=$(find "$run_dir" -maxdepth 1 -name '*.json' ! -name run.json | wc -l)
[ "$n" -eq 4 ] || fail "$n device reports, want 4"
version=$("$bin" --version | head -n 1 | sed 's/^espstation //')
grep -q "\"tool_version\": *\"$version\"" "$run_dir/run.json" ||
    fail "run.json's tool_version is not '$version'"

# 6. The stubs come from the unpacked tree: without the installed ESP8266 stub the run fails,
#    naming the unpacked directory (the build tree's stub would have done otherwise).
mv "$root/usr/share/espstation/stubs/esp8266.json" "$scratch/esp8266.json"
set +e
"$bin" run "$examples/nodemcu-micropython.yaml" --simulate 1 --sim-time-scale 0 --lines \
    --reports "$scratch/reports" >"$scratch/nostub.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || { cat "$scratch/nostub.out"; fail "without the installed stub: exit $rc, want 2"; }
grep -q "$root/usr/bin/../share/espstation/stubs/esp8266.json" "$scratch/nostub.out" ||
    { cat "$scratch/nostub.out"; fail "the error does not name the installed stub"; }
mv "$scratch/esp8266.json" "$root/usr/share/espstation/stubs/esp8266.json"

echo "deb.sh: all checks passed"
