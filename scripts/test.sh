#!/usr/bin/env bash
# Quick-start command 2: set everything up, run every test, end with
# "N passed, N failed, N skipped". A skipped test is counted and named, never taken as a pass.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" || { echo "setup failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
export PATH="$ROOT/.deps/node/bin:$PATH"
LOGS="$ROOT/build/test-logs"
mkdir -p "$LOGS"

passed=0
failed=0
skipped=0
add_counts() {  # name, passed, failed[, skipped]
  local s=${4:-0}
  echo "== $1: $2 passed, $3 failed, $s skipped"
  passed=$((passed + $2))
  failed=$((failed + $3))
  skipped=$((skipped + s))
}

# doctest binaries: the summary line is "[doctest] test cases: T | P passed | F failed | S skipped"
# (S: test cases with a `* doctest::skip(...)` decorator that held; nothing filters them here).
run_doctest() {
  local name=$1 bin=$2 log="$LOGS/$1.log"
  echo "-- $name"
  "$bin" --no-colors=true >"$log" 2>&1
  local rc=$?
  local summary
  summary=$(grep -E '^\[doctest\] test cases:' "$log" | tail -1)
  if [[ -z "$summary" ]]; then
    tail -30 "$log"
    add_counts "$name" 0 1
    return
  fi
  local p f s
  p=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$summary")
  f=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$summary")
  s=$(sed -nE 's/.*\| *([0-9]+) skipped.*/\1/p' <<<"$summary")
  if ((rc != 0 || f > 0)); then
    grep -B2 -A12 -E 'ERROR|FATAL|TEST CASE' "$log" | tail -80
    ((f == 0)) && f=1
  fi
  # Say which were skipped and why (the suite prints the reason once to stderr).
  ((${s:-0} > 0)) && grep -E '^skipped( |:)' "$log" | sort -u
  add_counts "$name" "$p" "$f" "${s:-0}"
}

# node --test: the TAP summary has "# pass N", "# fail N" and "# skipped N" (a skipped test is
# in none of the others; its line ends "# SKIP reason").
run_node_tests() {
  local name=$1 dir=$2 log="$LOGS/$1.log"
  echo "-- $name"
  (cd "$ROOT" && node --test --test-reporter=tap "$dir"/*.test.cjs) >"$log" 2>&1
  local rc=$?
  local p f s
  p=$(grep -E '^# pass ' "$log" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail ' "$log" | tail -1 | awk '{print $3}')
  s=$(grep -E '^# skipped ' "$log" | tail -1 | awk '{print $3}')
  p=${p:-0}
  f=${f:-0}
  s=${s:-0}
  if ((rc != 0 || f > 0)); then
    grep -E -A15 '^not ok|^ *not ok' "$log" | head -80
    ((f == 0)) && f=1
  fi
  ((s > 0)) && grep -E '^ *ok .*# SKIP' "$log"
  add_counts "$name" "$p" "$f" "$s"
}

run_doctest unit "$ROOT/build/tests/unit-tests"
run_doctest pid1 "$ROOT/build/tests/integration-tests"
# Tests that read per-namespace kernel counters or bind fixed ports get a fresh network namespace.
run_in_netns() {
  if unshare --net true 2>/dev/null; then
    unshare --net sh -c 'ip link set lo up && exec "$0" "$@"' "$@"
  else
    "$@"
  fi
}
run_proxy_tests() { run_in_netns "$ROOT/build/tests/proxy-tests" "$@"; }
run_net_fault_tests() { run_in_netns "$ROOT/build/tests/net-fault-tests" "$@"; }
run_doctest proxy run_proxy_tests
run_doctest admin "$ROOT/build/tests/admin-tests"
run_doctest cache "$ROOT/build/tests/cache-tests"
run_doctest bench "$ROOT/build/tests/bench-tests"
run_doctest net-faults run_net_fault_tests
# The gate tests run Knative's real queue-proxy (fixed ports 8022 and 9090) in a fresh network
# namespace, so nothing else on the machine collides. setup-queue-proxy.sh is cached after one build.
run_gate_tests() { run_in_netns "$ROOT/build/tests/gate-tests" "$@"; }
if "$ROOT/scripts/setup-queue-proxy.sh" >"$LOGS/setup-queue-proxy.log" 2>&1; then
  run_doctest gate run_gate_tests
else
  tail -20 "$LOGS/setup-queue-proxy.log"
  add_counts gate-setup 0 1
fi
# The compatibility matrix: its apps (built from npm, cached like the fixture) and the fixture on
# Node 20, 22, 24 and 26, on fixed ports: a fresh network namespace.
run_matrix_tests() { run_in_netns "$ROOT/build/tests/matrix-tests" "$@"; }
if "$ROOT/scripts/setup-matrix-apps.sh" >"$LOGS/setup-matrix-apps.log" 2>&1 &&
  "$ROOT/scripts/setup-node-matrix.sh" >>"$LOGS/setup-matrix-apps.log" 2>&1; then
  run_doctest matrix run_matrix_tests
else
  tail -20 "$LOGS/setup-matrix-apps.log"
  add_counts matrix-setup 0 1
fi
# Process and volume faults: loopback ports of their own, so a fresh network namespace too.
run_fault_tests() { run_in_netns "$ROOT/build/tests/fault-tests" "$@"; }
run_doctest fault run_fault_tests
# images/: the manifests through Knative's own validation (go test: one count per --- PASS/FAIL/SKIP
# line, subtests included), then the image suite (buildah build + runc run, its own counts).
run_manifest_tests() {
  local log="$LOGS/manifests.log"
  echo "-- manifests"
  "$ROOT/scripts/test-manifests.sh" >"$log" 2>&1
  local rc=$? p f s
  p=$(grep -cE '^\s*--- PASS' "$log")
  f=$(grep -cE '^\s*--- FAIL' "$log")
  s=$(grep -cE '^\s*--- SKIP' "$log")
  if ((rc != 0 || f > 0)); then
    grep -vE '^\s*(=== RUN|--- PASS)' "$log" | tail -40
    ((f == 0)) && f=1
  fi
  ((s > 0)) && grep -E -A2 '^\s*--- SKIP' "$log"
  add_counts manifests "$p" "$f" "$s"
}
run_manifest_tests
run_image_suite() {
  local log="$LOGS/images.log" start=$SECONDS
  echo "-- images"
  "$ROOT/scripts/test-images.sh" >"$log" 2>&1
  local rc=$? p=0 f=1 s=0 last
  last=$(tail -1 "$log")
  if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ [0-9]+\ skipped)?$ ]]; then
    p=${BASH_REMATCH[1]}
    f=${BASH_REMATCH[2]}
    s=$(tr -dc 0-9 <<<"${BASH_REMATCH[3]}")
  fi
  ((rc != 0 && f == 0)) && f=1
  grep -E '^(not ok|time:|size:)' "$log"
  ((f > 0)) && tail -30 "$log"
  echo "images suite: $((SECONDS - start)) s"
  add_counts images "$p" "$f" "${s:-0}"
}
run_image_suite
if compgen -G "$ROOT/tests/hook/*.test.cjs" >/dev/null; then
  run_node_tests hook "tests/hook"
fi

# Sanitizers, valgrind and fuzzing (README "Hardening checks").
source "$ROOT/scripts/test-hardening.sh"

echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
