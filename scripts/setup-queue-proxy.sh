#!/usr/bin/env bash
# Build Knative's real queue-proxy (knative.dev/serving/cmd/queue) for local
# readiness/probe tests without Kubernetes.
#
#   scripts/setup-queue-proxy.sh          # build if missing or version changed
#   scripts/setup-queue-proxy.sh --force  # rebuild
#
# Output: <repo>/.deps/bin/queue-proxy (+ queue-proxy.version stamp).
# Caches: ~/.cache/knext/go/{mod,build} (override root with KNEXT_CACHE_DIR);
# re-runs reuse them, a missing cache just means a cold build.
# Env: KNEXT_QP_VERSION (default below), GO (path to the go binary).
set -euo pipefail

QP_VERSION="${KNEXT_QP_VERSION:-v0.50.0}"
QP_PKG="knative.dev/serving/cmd/queue"

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd -- "$script_dir/.." && pwd -P)"
bin_dir="$repo_root/.deps/bin"
bin="$bin_dir/queue-proxy"
stamp="$bin.version"

force=0
[[ "${1:-}" == "--force" ]] && force=1

if [[ $force -eq 0 && -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$QP_VERSION" ]]; then
  echo "queue-proxy $QP_VERSION already built: $bin"
  exit 0
fi

source "$script_dir/go-env.sh"
mkdir -p "$bin_dir"

# Throwaway module that only requires the pinned serving release, so MVS
# resolves exactly serving's own dependency versions. Per-run dir: concurrent
# runs don't trample each other.
mkdir -p "$cache_root/go"
src="$(mktemp -d "$cache_root/go/qp-src.XXXXXX")"
tmp="$bin.tmp.$$"
trap 'rm -rf "$src" "$tmp"' EXIT
cat >"$src/go.mod" <<GOMOD
module knext.local/queue-proxy-build

go 1.25

require knative.dev/serving $QP_VERSION
GOMOD

echo "building $QP_PKG@$QP_VERSION with $("$go_bin" version) ..."
start=$(date +%s)
( cd "$src" && "$go_bin" build -trimpath -ldflags='-s -w' -o "$src/queue-proxy" "$QP_PKG" )
mkdir -p "$bin_dir"
cp "$src/queue-proxy" "$tmp"
mv -f "$tmp" "$bin"
printf '%s\n' "$QP_VERSION" >"$stamp"
echo "built $bin ($QP_VERSION) in $(( $(date +%s) - start ))s"
