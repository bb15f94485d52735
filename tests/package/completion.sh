#!/usr/bin/env bash
# The bash completion (contrib/bash-completion/espstation): sources it, fills COMP_WORDS and
# COMP_CWORD as bash would, calls the completion function and checks COMPREPLY.
#   completion.sh COMPLETION_FILE
# --port completes from `ESPSTATION ports --names`: a fake espstation stands in for it, so the
# test does not depend on the serial ports of the machine it runs on.
set -euo pipefail
completion=$1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failures=0

# shellcheck source=/dev/null
source "$completion"

cat >"$scratch/espstation" <<'FAKE'
#!/bin/sh
[ "$1 $2" = "ports --names" ] && printf '/dev/ttyUSB0\n/dev/ttyUSB1\n/dev/ttyACM0\n'
FAKE
chmod +x "$scratch/espstation"

# expect "WANTED REPLIES (sorted, space-separated)" WORD...: the last word is the one completed.
expect() {
    local want=$1 got
    shift
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="${COMP_WORDS[*]}"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    # As in an interactive shell: no -e (compgen returns 1 when nothing matches).
    set +e
    _espstation
    set -e
    got=$(printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//')
    if [ "$got" != "$want" ]; then
        echo "FAIL: '${COMP_WORDS[*]}' completes to '$got', want '$want'"
        failures=$((failures + 1))
    else
        echo "ok: '${COMP_WORDS[*]}' -> '$got'"
    fi
}

esp=$scratch/espstation
mkdir -p "$scratch/profiles/sub"
touch "$scratch/profiles/line.yaml" "$scratch/profiles/old.yml" "$scratch/profiles/notes.txt"

expect "run" "$esp" r
expect "verify version" "$esp" v
expect "--help --version" "$esp" --
expect "--continuous" "$esp" run --con
expect "" "$esp" verify --con
expect "--reflash --reports" "$esp" run --re
expect "--run-json-latest" "$esp" run --ru
expect "--names" "$esp" ports --n
expect "--udev" "$esp" ports --u
expect "--publish" "$esp" run --pu
expect "--station" "$esp" verify --st
expect "init" "$esp" db i
expect "" "$esp" db init postgresql://
expect "--since --station" "$esp" fleet --s
expect "fleet" "$esp" f
expect "/dev/ttyUSB0 /dev/ttyUSB1" "$esp" run profile.yaml --port /dev/ttyU
expect "/dev/ttyACM0" "$esp" verify -p /dev/ttyA
expect "/dev/ttyACM0" "$esp" run --port = /dev/ttyA
# Profiles: *.yaml and *.yml, and directories to descend into; never other files.
cd "$scratch"
expect "profiles/line.yaml profiles/old.yml profiles/sub" "$esp" run profiles/
expect "profiles/line.yaml" "$esp" check profiles/l
expect "" "$esp" check profiles/n
expect "profiles/sub" "$esp" run --reports profiles/

[ "$failures" -eq 0 ] || { echo "completion.sh: $failures failed"; exit 1; }
echo "completion.sh: all passed"
