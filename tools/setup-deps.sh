#!/usr/bin/env bash
# Installs what espstation needs to build and test, and nothing that is already there.
# Debian 12 packages via apt-get (as root, or through sudo), then the pinned npm packages
# (esptool-js: Espressif's client for the interop test, and the flasher stubs espstation uploads).
# Safe to run again: it does nothing when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    build-essential cmake pkg-config git      # compiler and build
    clang libclang-rt-14-dev                  # libFuzzer smoke run and sanitizer runtime
    clang-format                              # formatting check
    libuv1-dev libserialport-dev libyaml-dev libssl-dev zlib1g-dev libjansson-dev libcmocka-dev
    nodejs npm                                # esptool-js (interop test, flasher stubs)
    valgrind procps python3                   # python3: a test helper of the interop suite
    libpq-dev postgresql-15 util-linux jq     # fleet publishing; tests start a throwaway server
    scdoc man-db groff-base                   # man pages: build (scdoc) and render in the tests
    dpkg-dev file                             # cpack -G DEB: dpkg-shlibdeps, file
    systemd                                   # systemd-analyze verify, systemd-sysusers (unit test)
)

missing=()
for p in "${packages[@]}"; do
    # node and npm may come from elsewhere (e.g. a NodeSource build): accept the commands.
    case "$p" in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-deps: installing ${missing[*]}"
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# npm ci only when node_modules is missing or older than the lockfile. A node_modules that is a
# symlink (a git worktree sharing another checkout's packages) is that checkout's to update:
# npm ci would empty the directory it points to, under every tree that shares it.
if [ -f npm/package-lock.json ] && [ ! -L npm/node_modules ]; then
    if [ ! -d npm/node_modules ] || [ npm/package-lock.json -nt npm/node_modules ]; then
        echo "setup-deps: npm ci (npm/package-lock.json)"
        npm ci --prefix npm --no-audit --no-fund --loglevel=error
        touch npm/node_modules
    fi
fi
