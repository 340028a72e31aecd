#!/usr/bin/env bash
# Quick-start command 1: set everything up, then run knext-launch --bench in front of the
# fixture Next.js app: warm, cold and slow-storage tables. Arguments replace the defaults
# (e.g. `--runs 10 --page-cache=cold`, or `--load 100000 --concurrency 100` for the load test).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
export PATH="$ROOT/.deps/node/bin:$PATH"
cd "$ROOT/tests/fixtures/next-app/.next/standalone"
if (($# == 0)); then
  set -- --runs 3 --page-cache=both --slow-storage=2ms --warm-path / --warm-path /dynamic --warm-path /slow \
    --warm-path /list --warm-path /api/checksum
fi
exec "$ROOT/build/knext-launch" --bench "$@"
