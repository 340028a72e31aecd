#!/usr/bin/env bash
# Generate and build the bench's N-route app (bench/apps/gen-routes-app.cjs) in
# build/apps/routes-N, with the fixture's pinned Next.js, built by scripts/build-next-app.sh
# (idempotent: the generator leaves unchanged files as they are).
# stdout: one line, the standalone directory. Env: KNEXT_NPM_CACHE as for build-next-app.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-}"
[[ "$N" =~ ^[0-9]+$ ]] && ((N >= 1 && N <= 5000)) || {
  echo "setup-routes-app: give the route count, 1..5000 (got '${N}')" >&2
  exit 2
}

"$ROOT/scripts/setup-node.sh" >&2
export PATH="$ROOT/.deps/node/bin:$PATH"
FIXTURE="$ROOT/tests/fixtures/next-app"
APP="$ROOT/build/apps/routes-$N"
mkdir -p "$APP"
node "$ROOT/bench/apps/gen-routes-app.cjs" "$APP" "$N" "$FIXTURE/package.json" "$FIXTURE/package-lock.json"
server_js="$("$ROOT/scripts/build-next-app.sh" "$APP")"
dirname "$server_js"
