#!/usr/bin/env bash
# Build the Next.js fixture app (tests/fixtures/next-app) as `output: 'standalone'` with the
# pinned Node 24 (scripts/build-next-app.sh: idempotent, npm cache under ~/.cache/knext/npm,
# Turbopack's build cache kept in .next/cache between builds).
# stdout: exactly one line, the absolute path of the standalone server.js.
# Env: KNEXT_NPM_CACHE overrides the npm cache dir; KNEXT_FIXTURE_FORCE=1 rebuilds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KNEXT_BUILD_FORCE="${KNEXT_FIXTURE_FORCE:-0}" exec "$ROOT/scripts/build-next-app.sh" \
  "$ROOT/tests/fixtures/next-app"
