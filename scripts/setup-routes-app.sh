#!/usr/bin/env bash
# Generate and build the bench's N-route app (bench/apps/gen-routes-app.cjs) in
# build/apps/routes-N, with the fixture's pinned Next.js and the same standalone layout as
# setup-fixture.sh. Idempotent (a stamp of N, the generator, the lockfile and node's version).
# stdout: one line, the standalone directory. Env: KNEXT_NPM_CACHE as for setup-fixture.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-}"
[[ "$N" =~ ^[0-9]+$ ]] && ((N >= 1 && N <= 5000)) || {
  echo "setup-routes-app: give the route count, 1..5000 (got '${N}')" >&2
  exit 2
}
log() { echo "setup-routes-app: $*" >&2; }

"$ROOT/scripts/setup-node.sh" >&2
export PATH="$ROOT/.deps/node/bin:$PATH"
export npm_config_cache="${KNEXT_NPM_CACHE:-$HOME/.cache/knext/npm}"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export NEXT_TELEMETRY_DISABLED=1

FIXTURE="$ROOT/tests/fixtures/next-app"
APP="$ROOT/build/apps/routes-$N"
mkdir -p "$APP"
exec 9>"$APP/.setup.lock"
flock 9

stamp="n=$N node=$(node --version) gen=$(sha256sum "$ROOT/bench/apps/gen-routes-app.cjs" | cut -d' ' -f1)"
stamp+=" lock=$(sha256sum "$FIXTURE/package-lock.json" | cut -d' ' -f1)"
stamp+=" script=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
STAMP_FILE="$APP/.next/.knext-routes-stamp"
if [[ -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$stamp" && -f "$APP/.next/standalone/server.js" ]]; then
  log "routes-$N up to date"
  echo "$APP/.next/standalone"
  exit 0
fi

node "$ROOT/bench/apps/gen-routes-app.cjs" "$APP" "$N" "$FIXTURE/package.json" "$FIXTURE/package-lock.json"
cd "$APP"
LOGDIR="$(mktemp -d)"
trap 'rm -rf "$LOGDIR"' EXIT
if [[ ! -f node_modules/.knext-lock || "$(cat node_modules/.knext-lock)" != "$(sha256sum package-lock.json)" ]]; then
  t0=$SECONDS
  npm ci --prefer-offline --no-audit --no-fund --loglevel=error >"$LOGDIR/npm.log" 2>&1 ||
    { cat "$LOGDIR/npm.log" >&2; log "npm ci failed"; exit 1; }
  sha256sum package-lock.json >node_modules/.knext-lock
  log "npm ci done ($((SECONDS - t0)) s)"
fi
t0=$SECONDS
rm -f "$STAMP_FILE"
node node_modules/next/dist/bin/next build >"$LOGDIR/build.log" 2>&1 ||
  { tail -40 "$LOGDIR/build.log" >&2; log "next build failed"; exit 1; }
rm -rf .next/standalone/.next/static
cp -a .next/static .next/standalone/.next/static
echo "$stamp" >"$STAMP_FILE"
log "routes-$N built ($((SECONDS - t0)) s)"
echo "$APP/.next/standalone"
