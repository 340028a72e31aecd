#!/usr/bin/env bash
# Build the compatibility-matrix apps (tests/fixtures/matrix/*) as `output: 'standalone'` with
# the pinned Node from .deps/node, laid out as a container image has them (static and public
# copied beside server.js), the same way scripts/setup-fixture.sh builds the Next 16 fixture:
#   next14-pages     Next 14.2 Pages Router: static /, getServerSideProps, ISR, API, middleware
#   next15-basepath  Next 15.5 App Router, basePath /shop, middleware
# Idempotent per app: nothing runs while a stamp of (sources, lockfile, node version, this
# script) still matches, and `npm ci` is skipped while the lockfile and node have not changed.
# The npm cache is ~/.cache/knext/npm (KNEXT_NPM_CACHE overrides it).
#
# stdout: one line per app, the absolute path of its standalone server.js.
# stderr: one status line per step; full logs only when a step fails.
# Env: KNEXT_MATRIX_FORCE=1 rebuilds; arguments: app names to build (default: all).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MATRIX="$ROOT/tests/fixtures/matrix"
SELF="$ROOT/scripts/setup-matrix-apps.sh"

log() { echo "setup-matrix-apps: $*" >&2; }

"$ROOT/scripts/setup-node.sh" >&2
export PATH="$ROOT/.deps/node/bin:$PATH"
NODE_VERSION="$(node --version)"

export npm_config_cache="${KNEXT_NPM_CACHE:-$HOME/.cache/knext/npm}"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export NEXT_TELEMETRY_DISABLED=1
mkdir -p "$npm_config_cache"

LOGDIR="$(mktemp -d)"
trap 'rm -rf "$LOGDIR"' EXIT
run_logged() { # name cmd...
  local name="$1"; shift
  if ! "$@" >"$LOGDIR/$name.log" 2>&1; then
    cat "$LOGDIR/$name.log" >&2
    log "$name failed: $*"
    exit 1
  fi
}

# Hash of every source file of the app in the current directory (paths and contents).
src_hash() {
  find . \( -path ./node_modules -o -path ./.next -o -name .setup.lock -o -name next-env.d.ts \) \
       -prune -o -type f -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

build_app() { # name
  local name=$1 app="$MATRIX/$1"
  local server_js="$app/.next/standalone/server.js"
  [[ -f "$app/package-lock.json" ]] || { log "$name: no such app in $MATRIX"; exit 1; }
  cd "$app"
  exec 9>"$app/.setup.lock"  # one setup at a time per app
  flock 9
  local build_stamp_file="$app/.next/.knext-matrix-stamp"
  local deps_stamp_file="$app/node_modules/.knext-matrix-stamp"
  local deps_stamp build_stamp
  deps_stamp="node=$NODE_VERSION lock=$(sha256sum package-lock.json | cut -d' ' -f1)"
  build_stamp="$deps_stamp src=$(src_hash) script=$(sha256sum "$SELF" | cut -d' ' -f1)"
  if [[ "${KNEXT_MATRIX_FORCE:-0}" != 1 && -f "$server_js" && -f "$build_stamp_file" \
        && "$(cat "$build_stamp_file")" == "$build_stamp" ]]; then
    log "$name: up to date"
    echo "$server_js"
    exec 9>&-
    return
  fi
  local t0=$SECONDS
  if [[ "${KNEXT_MATRIX_FORCE:-0}" != 1 && -f "$deps_stamp_file" \
        && "$(cat "$deps_stamp_file")" == "$deps_stamp" ]]; then
    log "$name: node_modules up to date"
  else
    run_logged "$name-npm-ci" npm ci --prefer-offline --no-audit --no-fund --loglevel=error
    echo "$deps_stamp" >"$deps_stamp_file"
    log "$name: npm ci done ($((SECONDS - t0)) s)"
  fi
  t0=$SECONDS
  rm -f "$build_stamp_file"
  run_logged "$name-next-build" node node_modules/next/dist/bin/next build
  [[ -f "$server_js" ]] || { log "$name: next build did not produce $server_js"; exit 1; }
  rm -rf .next/standalone/.next/static .next/standalone/public
  cp -a .next/static .next/standalone/.next/static
  if [[ -d public ]]; then cp -a public .next/standalone/public; fi
  echo "$build_stamp" >"$build_stamp_file"
  log "$name: next build done ($((SECONDS - t0)) s)"
  echo "$server_js"
  exec 9>&-
}

apps=("$@")
((${#apps[@]})) || apps=(next14-pages next15-basepath)
for name in "${apps[@]}"; do build_app "$name"; done
