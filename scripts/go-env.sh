# Sourced by the scripts that build Go code (setup-queue-proxy.sh, test-manifests.sh): finds go
# (GO, PATH or /usr/local/go) as $go_bin and points Go's module and build caches at
# ~/.cache/knext/go/{mod,build} (KNEXT_CACHE_DIR moves them), shared by every Go build here.
# Needs $repo_root; sets $cache_root.
go_bin="${GO:-}"
if [[ -z "$go_bin" ]]; then
  if command -v go >/dev/null 2>&1; then go_bin="$(command -v go)"
  elif [[ -x /usr/local/go/bin/go ]]; then go_bin=/usr/local/go/bin/go
  else echo "$(basename "$0"): go not found (set GO=/path/to/go)" >&2; exit 1
  fi
fi

if [[ -n "${KNEXT_CACHE_DIR:-}" ]]; then cache_root="$KNEXT_CACHE_DIR"
elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then cache_root="$XDG_CACHE_HOME/knext"
elif [[ -n "${HOME:-}" ]]; then cache_root="$HOME/.cache/knext"
else cache_root="$repo_root/.cache/knext"
fi
export GOMODCACHE="$cache_root/go/mod"
export GOCACHE="$cache_root/go/build"
export GOFLAGS="-mod=mod -modcacherw"   # -modcacherw: cache removable with rm -rf
export GOTOOLCHAIN=local      # never fetch another toolchain
export CGO_ENABLED=0          # static binaries, no C toolchain needed
mkdir -p "$GOMODCACHE" "$GOCACHE"
