#!/usr/bin/env bash
# Validate images/knative and images/kubernetes with Knative's own API code (images/validate, a Go
# module pinned to knative.dev/serving v0.50.0 like queue-proxy). Prints `go test -v` output.
# Go caches: as scripts/setup-queue-proxy.sh (scripts/go-env.sh). Env: GO (path to the go binary).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo_root/scripts/go-env.sh"
cd "$repo_root/images/validate"
exec "$go_bin" test -count=1 -v ./...
