# Sourced by scripts/test.sh (uses its ROOT, LOGS, run_doctest, run_in_netns, add_counts):
# the hardening checks of README "Hardening checks".
#   asan-*     the unit and integration suites again, built with ASan+UBSan (build-asan/)
#   valgrind   one start-serve-stop cycle of the release launcher as PID 1 under memcheck
#   fuzz-*     each libFuzzer target of tests/fuzz for FUZZ_SECONDS (build-fuzz/, clang)
# Build dirs are reused when present and configured when not.

FUZZ_SECONDS=${FUZZ_SECONDS:-20}
hardening_start=$SECONDS
step_time() { echo "== time: $1 $(($SECONDS - $2))s"; }

# --- ASan + UBSan --------------------------------------------------------------------------
ASAN_BUILD="$ROOT/build-asan"
ASAN_REPORTS="$LOGS/sanitizer-reports"
# Like the release suites: queue-proxy's fixed ports and per-namespace counters in a fresh netns.
run_asan_gate_tests() { run_in_netns "$ASAN_BUILD/tests/gate-tests" "$@"; }
run_asan_proxy_tests() { run_in_netns "$ASAN_BUILD/tests/proxy-tests" "$@"; }
t0=$SECONDS
if [[ ! -f "$ASAN_BUILD/build.ninja" ]]; then
  meson setup "$ASAN_BUILD" "$ROOT" -Dbuildtype=plain -Doptimization=1 -Dcpp_args=-g1 \
    -Db_sanitize=address,undefined \
    -Db_lundef=false >"$LOGS/asan-setup.log" 2>&1 || tail -20 "$LOGS/asan-setup.log"
fi
# Not the bench suite: its runs are timing, not memory, and take longest.
asan_targets=(knext-launch tests/{unit,integration,proxy,admin,cache,gate}-tests tests/sigreport
  tests/with-signals)
if ninja -C "$ASAN_BUILD" -j2 "${asan_targets[@]}" >"$LOGS/asan-build.log" 2>&1; then
  step_time asan-build "$t0"
  t0=$SECONDS
  rm -rf "$ASAN_REPORTS"
  mkdir -p "$ASAN_REPORTS"
  # Every sanitized process (test binaries, the launcher, its warm-up worker) writes any report
  # to a file there, so a report from a child the test did not look at still fails the run.
  # node is not sanitized: the runtime is linked into our binaries only (no LD_PRELOAD), and
  # node ignores these variables. detect_stack_use_after_return: a thread left reading into a
  # frame that has returned (the warm-up worker's command reader once did) is caught too.
  export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:abort_on_error=0:log_exe_name=1:log_path=$ASAN_REPORTS/asan"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_exe_name=1:log_path=$ASAN_REPORTS/ubsan"
  run_doctest asan-unit "$ASAN_BUILD/tests/unit-tests"
  run_doctest asan-pid1 "$ASAN_BUILD/tests/integration-tests"
  run_doctest asan-proxy run_asan_proxy_tests
  run_doctest asan-admin "$ASAN_BUILD/tests/admin-tests"
  run_doctest asan-cache "$ASAN_BUILD/tests/cache-tests"
  # Without queue-proxy the gate suite cannot run: that is a failure, not a suite left out.
  if "$ROOT/scripts/setup-queue-proxy.sh" >"$LOGS/asan-setup-queue-proxy.log" 2>&1; then
    run_doctest asan-gate run_asan_gate_tests
  else
    tail -20 "$LOGS/asan-setup-queue-proxy.log"
    add_counts asan-gate-setup 0 1
  fi
  # The launcher's children run without the sanitizer runtime.
  child_maps=$("$ASAN_BUILD/knext-launch" --admin-port 0 --gate none -- cat /proc/self/maps 2>&1)
  launcher_maps=$(ldd "$ASAN_BUILD/knext-launch")
  if grep -q libasan <<<"$launcher_maps" && ! grep -qE 'libasan|libubsan' <<<"$child_maps" &&
    grep -q '\[stack\]' <<<"$child_maps"; then
    add_counts asan-child-runtime 1 0
  else
    echo "the child of the sanitized launcher maps a sanitizer runtime (or did not run):"
    grep -E 'libasan|libubsan' <<<"$child_maps" | head -5
    add_counts asan-child-runtime 0 1
  fi
  unset ASAN_OPTIONS UBSAN_OPTIONS
  # A file with an error report fails the run. LeakSanitizer also writes a lone "Unable to get
  # registers from thread N" when a thread ends while it stops the world for the leak check at
  # exit; a leak it then finds is an ERROR of its own. The lone line is shown, not counted.
  errors=0
  for r in "$ASAN_REPORTS"/*; do
    [[ -e "$r" ]] || continue
    first=$(grep -m1 -E 'ERROR|SUMMARY|runtime error|fatal error' "$r")
    if [[ -z "$first" ]]; then
      echo "== sanitizer note ${r##*/}: $(head -c 300 "$r" | tr '\n' ' ')"
      continue
    fi
    errors=$((errors + 1))
    echo "sanitizer report $r:"
    head -40 "$r"
    # One line per report too, named for the process that wrote it (log_exe_name).
    echo "== sanitizer report ${r##*/}: $first"
    grep -m6 -E '^ +#[0-9]+ ' "$r" | sed 's/^ */== report frame: /'
  done
  if ((errors > 0)); then
    add_counts asan-reports 0 "$errors"
  else
    add_counts asan-reports 1 0
  fi
  step_time asan-runs "$t0"
else
  tail -30 "$LOGS/asan-build.log"
  add_counts asan-build 0 1
fi

# --- valgrind memcheck: start, serve one request, SIGTERM -----------------------------------
t0=$SECONDS
run_valgrind_cycle() {
  local log="$LOGS/valgrind.log" app="$ROOT/tests/fixtures/next-app/.next/standalone"
  local port=3000 ns_pid vg_pid body rc=0
  # The launcher is PID 1 of a fresh PID namespace (under valgrind, which runs in-process) in
  # its own network namespace. Children are traced too except node: the warm-up worker is.
  (cd "$app" && PORT=$port exec unshare --net sh -c 'ip link set lo up && exec "$0" "$@"' \
    unshare --pid --fork --mount-proc \
    valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --trace-children=yes --trace-children-skip='*/node,*/sh' \
    --log-file="$LOGS/valgrind-%p.log" \
    "$ROOT/build/knext-launch" --admin-port 9901) >"$log" 2>&1 &
  ns_pid=$!
  for _ in $(seq 1 600); do
    body=$(nsenter -t "$ns_pid" -n curl -s -m 2 -o /dev/null -w '%{http_code}' \
      "http://127.0.0.1:9901/readyz" 2>/dev/null)
    [[ "$body" == 200 ]] && break
    sleep 0.2
  done
  body=$(nsenter -t "$ns_pid" -n curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")
  vg_pid=$(cat "/proc/$ns_pid/task/$ns_pid/children" 2>/dev/null)
  kill -TERM "$vg_pid" 2>/dev/null
  wait "$ns_pid" || rc=$?
  cat "$LOGS"/valgrind-*.log >>"$log"
  # valgrind really ran the launcher as PID 1, and no process it traced reported anything.
  if [[ "$body" == 200 && $rc == 143 ]] && grep -q '^==1== ERROR SUMMARY: 0 errors' "$log" &&
    ! grep -qE 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]' "$log"; then
    add_counts valgrind 1 0
  else
    echo "valgrind cycle: GET / answered '$body', exit $rc (want 200, 143)"
    grep -E 'ERROR SUMMARY|definitely lost|Invalid|uninitialised' "$log" | head -20
    add_counts valgrind 0 1
  fi
  rm -f "$LOGS"/valgrind-*.log
}
if command -v valgrind >/dev/null; then
  run_valgrind_cycle
else
  add_counts valgrind 0 1
fi
step_time valgrind "$t0"

# --- libFuzzer targets -----------------------------------------------------------------------
t0=$SECONDS
FUZZ_BUILD="$ROOT/build-fuzz"
if [[ ! -f "$FUZZ_BUILD/build.ninja" ]]; then
  CXX=clang++ meson setup "$FUZZ_BUILD" "$ROOT" -Dfuzz=true >"$LOGS/fuzz-setup.log" 2>&1 ||
    tail -20 "$LOGS/fuzz-setup.log"
fi
mapfile -t fuzz_targets < <(sed -nE "s/^ *'([a-z_]+)',.*/\1/p" "$ROOT/tests/fuzz/meson.build")
fuzz_bins=()
for target in "${fuzz_targets[@]}"; do fuzz_bins+=("tests/fuzz/$target-fuzz"); done
if ninja -C "$FUZZ_BUILD" -j2 "${fuzz_bins[@]}" >"$LOGS/fuzz-build.log" 2>&1; then
  step_time fuzz-build "$t0"
  t0=$SECONDS
  for target in "${fuzz_targets[@]}"; do
    log="$LOGS/fuzz-$target.log"
    work="$FUZZ_BUILD/corpus-$target"  # what the run finds; the seeds stay as committed
    mkdir -p "$work"
    (cd "$FUZZ_BUILD" && "./tests/fuzz/$target-fuzz" -max_total_time="$FUZZ_SECONDS" \
      -print_final_stats=1 -timeout=10 -rss_limit_mb=1024 \
      "$work" "$ROOT/tests/fuzz/corpus/$target") >"$log" 2>&1
    rc=$?
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
    echo "   fuzz $target: ${execs:-?} execs in ${FUZZ_SECONDS}s"
    if ((rc == 0)) && [[ -n "$execs" ]]; then
      add_counts "fuzz-$target" 1 0
    else
      grep -E -A25 'ERROR|==[0-9]+==|runtime error|property failed' "$log" | head -40
      add_counts "fuzz-$target" 0 1
    fi
  done
  step_time fuzz-runs "$t0"
else
  tail -30 "$LOGS/fuzz-build.log"
  add_counts fuzz-build 0 1
fi
step_time hardening-total "$hardening_start"
