#!/usr/bin/env bash
# Quick-start command 1: set everything up, then run knext-launch --bench in front of the
# fixture Next.js app. Extra arguments go to --bench (e.g. --runs 10).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
export PATH="$ROOT/.deps/node/bin:$PATH"
cd "$ROOT/tests/fixtures/next-app/.next/standalone"
exec "$ROOT/build/knext-launch" --bench "$@"
