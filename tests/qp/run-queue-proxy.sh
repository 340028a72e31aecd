#!/usr/bin/env bash
# Run Knative's real queue-proxy in the foreground (no Kubernetes) in front of
# an app on 127.0.0.1:$USER_PORT. Built by scripts/setup-queue-proxy.sh.
#
# Required env:
#   USER_PORT   the app's port (queue-proxy proxies and probes 127.0.0.1:USER_PORT)
#   QP_PORT     queue-proxy's serving port (QUEUE_SERVING_PORT; binds all interfaces)
#   QP_PROBE    tcp | http:/some/path | none   (the user container's readinessProbe)
# Optional env:
#   QP_PERIOD_SECONDS   probe periodSeconds (default 0 = Knative's aggressive
#                       probing: every 50 ms, 100 ms timeout, up to 10 s per check)
#   QP_TIMEOUT_SECONDS  probe timeoutSeconds, only used when period > 0 (default 1)
#   QP_BIN              queue-proxy binary (default <repo>/.deps/bin/queue-proxy)
#   QP_LOG_LEVEL        debug|info|warn|error (default info)
#   CONTAINER_CONCURRENCY (default 0 = unlimited), REVISION_TIMEOUT_SECONDS (default 300)
#   QP_DRY_RUN=1        print the env that would be used and exit
#
# Fixed ports (not configurable in serving v0.50): admin 8022 (/drain),
# autoscaler metrics 9090, both on all interfaces -> only ONE queue-proxy per
# network namespace at a time (see tests/qp/README.md).
# Shutdown: SIGTERM = 30 s drain (not configurable); a 2nd SIGTERM/SIGINT exits 1 at once.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd -- "$script_dir/../.." && pwd -P)"
qp_bin="${QP_BIN:-$repo_root/.deps/bin/queue-proxy}"

die() { echo "run-queue-proxy: $*" >&2; exit 2; }

: "${USER_PORT:?USER_PORT is required}"
: "${QP_PORT:?QP_PORT is required}"
: "${QP_PROBE:?QP_PROBE is required (tcp | http:/path | none)}"
[[ "$USER_PORT" =~ ^[0-9]+$ ]] || die "USER_PORT must be a port number, got '$USER_PORT'"
[[ "$QP_PORT" =~ ^[0-9]+$ ]] || die "QP_PORT must be a port number, got '$QP_PORT'"
period="${QP_PERIOD_SECONDS:-0}"
timeout="${QP_TIMEOUT_SECONDS:-1}"
[[ "$period" =~ ^[0-9]+$ ]] || die "QP_PERIOD_SECONDS must be an integer"
[[ "$timeout" =~ ^[0-9]+$ ]] || die "QP_TIMEOUT_SECONDS must be an integer"

# JSON-escape a string (path) for embedding in the probe JSON.
json_str() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# Same shape the revision reconciler encodes (pkg/reconciler/revision/resources/queue.go,
# applyReadinessProbeDefaults): host 127.0.0.1, port = user port, scheme HTTP.
timing='"successThreshold":1'
if (( period > 0 )); then
  timing="\"periodSeconds\":$period,\"timeoutSeconds\":$(( timeout < 1 ? 1 : timeout )),$timing"
fi
case "$QP_PROBE" in
  tcp)
    probe="{\"tcpSocket\":{\"port\":$USER_PORT,\"host\":\"127.0.0.1\"},$timing}" ;;
  http:/*)
    path="${QP_PROBE#http:}"
    probe="{\"httpGet\":{\"path\":$(json_str "$path"),\"port\":$USER_PORT,\"host\":\"127.0.0.1\",\"scheme\":\"HTTP\"},$timing}" ;;
  none)
    probe="" ;;   # no probe: queue-proxy reports ready immediately
  *) die "QP_PROBE must be 'tcp', 'http:/path' or 'none', got '$QP_PROBE'" ;;
esac

if [[ -e /var/lib/knative/certs/tls.crt && -e /var/lib/knative/certs/tls.key ]]; then
  echo "run-queue-proxy: warning: /var/lib/knative/certs has a cert: queue-proxy will also serve TLS on QUEUE_SERVING_TLS_PORT" >&2
fi

level="${QP_LOG_LEVEL:-info}"
# zap config (knative.dev/pkg/logging). Without one, queue-proxy falls back to
# a default production config and logs a warning.
logcfg='{"level":"'"$level"'","development":false,"outputPaths":["stderr"],"errorOutputPaths":["stderr"],"encoding":"json","encoderConfig":{"timeKey":"ts","levelKey":"level","nameKey":"logger","messageKey":"msg","stacktraceKey":"stacktrace","lineEnding":"","levelEncoder":"lowercase","timeEncoder":"iso8601","durationEncoder":"string"}}'

qp_env=(
  SERVING_NAMESPACE=default
  SERVING_SERVICE=knext-test
  SERVING_CONFIGURATION=knext-test
  SERVING_REVISION=knext-test-00001
  SERVING_POD=knext-test-00001-deployment-local
  SERVING_POD_IP=127.0.0.1
  QUEUE_SERVING_PORT="$QP_PORT"
  QUEUE_SERVING_TLS_PORT=0           # required by envconfig; only bound when certs exist
  USER_PORT="$USER_PORT"
  CONTAINER_CONCURRENCY="${CONTAINER_CONCURRENCY:-0}"
  REVISION_TIMEOUT_SECONDS="${REVISION_TIMEOUT_SECONDS:-300}"
  REVISION_RESPONSE_START_TIMEOUT_SECONDS=0
  REVISION_IDLE_TIMEOUT_SECONDS=0
  SERVING_READINESS_PROBE="$probe"
  SERVING_LOGGING_CONFIG="$logcfg"
  SERVING_LOGGING_LEVEL="$level"
  ENABLE_HTTP2_AUTO_DETECTION=false
  ENABLE_HTTP_FULL_DUPLEX=false
  ENABLE_MULTI_CONTAINER_PROBES=false
  SYSTEM_NAMESPACE=knative-serving
  # metrics/tracing/profiling off (the defaults); keeps 9091/8008 closed
  OBSERVABILITY_CONFIG='{"tracing":{"protocol":"none"},"metrics":{"protocol":"none"},"runtime":{"profiling":"disabled"},"requestMetrics":{"protocol":"none"}}'
)

if [[ "${QP_DRY_RUN:-0}" == 1 ]]; then
  printf '%s\n' "${qp_env[@]}"
  exit 0
fi

[[ -x "$qp_bin" ]] || die "queue-proxy not found at $qp_bin (run scripts/setup-queue-proxy.sh)"
# Fail fast with a clear message if the fixed ports are taken (e.g. another
# queue-proxy in this network namespace); queue-proxy itself would exit 1 with
# "bind: address already in use" after briefly starting its other servers.
for fixed in 8022 9090 "$QP_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$fixed") 2>/dev/null; then
    die "port $fixed is already in use on 127.0.0.1 (admin 8022 and metrics 9090 are fixed: one queue-proxy per network namespace)"
  fi
done
exec env "${qp_env[@]}" "$qp_bin"
