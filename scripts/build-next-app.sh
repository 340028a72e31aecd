#!/usr/bin/env bash
# Build one Next.js app of this repo (the fixture, a matrix app, a generated bench app) as
# `output: 'standalone'` with the pinned Node 24 from .deps/node (setup-node.sh), and lay out the
# standalone tree the way a container image does:
#   .next/standalone/server.js
#   .next/standalone/.next/static   <- copied from .next/static
#   .next/standalone/public         <- copied from public/
# Idempotent: skips everything when a stamp of (the app's sources, lockfile, node version, this
# script) still matches; skips `npm ci` alone when the lockfile and node version have not
# changed. The npm cache is ~/.cache/knext/npm. One build at a time per app (flock).
#
# Usage: build-next-app.sh APP_DIR
# stdout: exactly one line, the absolute path of the standalone server.js.
# stderr: one status line per step; full logs only when a step fails.
# Env: KNEXT_NPM_CACHE overrides the npm cache dir; KNEXT_BUILD_FORCE=1 rebuilds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/scripts/build-next-app.sh"
APP="$(cd "${1:?usage: build-next-app.sh APP_DIR}" && pwd)"
NAME="$(basename "$APP")"
SERVER_JS="$APP/.next/standalone/server.js"
FORCE="${KNEXT_BUILD_FORCE:-0}"

log() { echo "build-next-app: $NAME: $*" >&2; }

"$ROOT/scripts/setup-node.sh" >&2
export PATH="$ROOT/.deps/node/bin:$PATH"
NODE_VERSION="$(node --version)"
export npm_config_cache="${KNEXT_NPM_CACHE:-$HOME/.cache/knext/npm}"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export NEXT_TELEMETRY_DISABLED=1
mkdir -p "$npm_config_cache"

[[ -f "$APP/package-lock.json" ]] || { log "no package-lock.json in $APP"; exit 1; }
cd "$APP"
exec 9>"$APP/.setup.lock"
flock 9

# Hash of every source file of the app (paths and contents), minus build outputs.
src_hash() {
  find . \( -path ./node_modules -o -path ./.next -o -name .setup.lock -o -name next-env.d.ts \) \
       -prune -o -type f -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

BUILD_STAMP_FILE="$APP/.next/.knext-build-stamp"
DEPS_STAMP_FILE="$APP/node_modules/.knext-build-stamp"
deps_stamp="node=$NODE_VERSION lock=$(sha256sum package-lock.json | cut -d' ' -f1)"
build_stamp="$deps_stamp src=$(src_hash) script=$(sha256sum "$SELF" | cut -d' ' -f1)"

if [[ "$FORCE" != 1 && -f "$SERVER_JS" && -f "$BUILD_STAMP_FILE" \
      && "$(cat "$BUILD_STAMP_FILE")" == "$build_stamp" ]]; then
  log "up to date"
  echo "$SERVER_JS"
  exit 0
fi

LOGDIR="$(mktemp -d)"
trap 'rm -rf "$LOGDIR"' EXIT
run_logged() { # name cmd...
  local step="$1"; shift
  if ! "$@" >"$LOGDIR/$step.log" 2>&1; then
    cat "$LOGDIR/$step.log" >&2
    log "$step failed: $*"
    exit 1
  fi
}

if [[ "$FORCE" != 1 && -f "$DEPS_STAMP_FILE" && "$(cat "$DEPS_STAMP_FILE")" == "$deps_stamp" ]]; then
  log "node_modules up to date"
else
  t0=$SECONDS
  run_logged npm-ci npm ci --prefer-offline --no-audit --no-fund --loglevel=error
  echo "$deps_stamp" >"$DEPS_STAMP_FILE"
  log "npm ci done ($((SECONDS - t0)) s)"
fi

t0=$SECONDS
rm -f "$BUILD_STAMP_FILE"
run_logged next-build node node_modules/next/dist/bin/next build
[[ -f "$SERVER_JS" ]] || { log "next build did not produce $SERVER_JS"; ls -R .next/standalone >&2 || true; exit 1; }

rm -rf .next/standalone/.next/static .next/standalone/public
cp -a .next/static .next/standalone/.next/static
if [[ -d public ]]; then cp -a public .next/standalone/public; fi

echo "$build_stamp" >"$BUILD_STAMP_FILE"
log "next build done ($((SECONDS - t0)) s)"
echo "$SERVER_JS"
