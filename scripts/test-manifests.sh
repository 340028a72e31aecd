#!/usr/bin/env bash
# Validate images/knative and images/kubernetes with Knative's own API code (images/validate, a Go
# module pinned to knative.dev/serving v0.50.0 like queue-proxy). Prints `go test -v` output.
# Caches: the same Go module and build caches as scripts/setup-queue-proxy.sh
# (~/.cache/knext/go/{mod,build}; KNEXT_CACHE_DIR moves them). Env: GO (path to the go binary).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
go_bin="${GO:-}"
if [[ -z "$go_bin" ]]; then
  if command -v go >/dev/null 2>&1; then go_bin="$(command -v go)"
  elif [[ -x /usr/local/go/bin/go ]]; then go_bin=/usr/local/go/bin/go
  else echo "test-manifests: go not found (set GO=/path/to/go)" >&2; exit 1
  fi
fi
if [[ -n "${KNEXT_CACHE_DIR:-}" ]]; then cache_root="$KNEXT_CACHE_DIR"
elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then cache_root="$XDG_CACHE_HOME/knext"
elif [[ -n "${HOME:-}" ]]; then cache_root="$HOME/.cache/knext"
else cache_root="$ROOT/.cache/knext"
fi
export GOMODCACHE="$cache_root/go/mod" GOCACHE="$cache_root/go/build"
export GOFLAGS="-mod=mod -modcacherw" GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$GOMODCACHE" "$GOCACHE"
cd "$ROOT/images/validate"
exec "$go_bin" test -count=1 -v ./...
