#!/usr/bin/env bash
# Build the compatibility-matrix apps (tests/fixtures/matrix/*) with scripts/build-next-app.sh,
# as the Next 16 fixture is built:
#   next14-pages     Next 14.2 Pages Router: static /, getServerSideProps, ISR, API, middleware
#   next15-basepath  Next 15.5 App Router, basePath /shop, middleware
# stdout: one line per app, the absolute path of its standalone server.js.
# Env: KNEXT_MATRIX_FORCE=1 rebuilds; arguments: app names to build (default: all).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apps=("$@")
((${#apps[@]})) || apps=(next14-pages next15-basepath)
for name in "${apps[@]}"; do
  KNEXT_BUILD_FORCE="${KNEXT_MATRIX_FORCE:-0}" \
    "$ROOT/scripts/build-next-app.sh" "$ROOT/tests/fixtures/matrix/$name"
done
