#pragma once
// Where node's compile cache (NODE_COMPILE_CACHE) goes for this run.
//
// Layout, the same on the volume and in the seed (so `--prewarm` writes a seed by placing a
// cache with --cache-dir=<seed>):
//   <root>/<app>/<build-id>/                  NODE_COMPILE_CACHE of one build of one app
//   <root>/<app>/<build-id>/<node tag>/...    node's own layout: <version>-<arch>-<V8 tag>-<uid>
//   <root>/<app>/.tmp-<build-id>-<pid>-XXXXXX a seed copy in progress (renamed into place)
// Many apps and builds share one volume; old builds are evicted by cache_eviction.hpp.
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/expected.hpp"
#include "common/fd.hpp"

namespace knext {

struct CacheOptions {
  std::string cache_dir;   // --cache-dir (the mounted volume); empty: none
  std::string cache_seed;  // --cache-seed (baked into the image, read-only is fine); empty: none
  std::string app_dir;     // the app's directory (cwd of node server.js)
  std::string app_name;    // empty: default_app_name(app_dir) (app_name.hpp)
  uint64_t max_bytes = 256ULL << 20;  // --cache-max-bytes, for evict_old_builds
  uid_t app_uid = 0;                  // the uid node runs as
  std::string tmp_dir;                // last resort's parent; empty: $TMPDIR, else /tmp
};

enum class CacheSource { kVolume, kSeedReadOnly, kTmp, kNone };
const char* cache_source_name(CacheSource source);

// The directories that passed the checks, held open for the whole run. The volume root may be
// group-writable (fsGroup), so a group member can rename <app> and put a symlink in its place at
// any time after the check: everything on the volume is done relative to these fds, and node is
// given /proc/self/fd/<node_dir> (inherited at the same number), never the path again.
struct CacheDirs {
  Fd volume_app;  // <cache_dir>/<app>, when the volume passed every check
  Fd seed;        // <cache_seed>/<app>/<build-id>, when it is usable
  Fd node_dir;    // the directory node uses: the volume's build, the seed or the tmp one
};

struct CachePlacement {
  // NODE_COMPILE_CACHE for node: /proc/self/fd/<dirs->node_dir>; empty with kNone.
  std::string dir;
  std::string path;  // the checked path `dir` stands for, for log lines and /metrics
  std::shared_ptr<const CacheDirs> dirs;
  int node_dir_fd() const { return dirs ? dirs->node_dir.get() : -1; }
  CacheSource source = CacheSource::kNone;
  std::string reason;  // one line: why this one, what was refused (logged after the source name)
  // The volume has nothing for this build but the seed has: node reads the seed this run and
  // seed_volume() copies it into the volume for the next cold start.
  bool seeded_from_seed = false;
  std::string app;         // the <app> path component
  std::string build_id;    // the <build-id> path component
  std::string volume_dir;  // <cache_dir>/<app>/<build-id> if the volume passed every check
  std::string seed_dir;    // <cache_seed>/<app>/<build-id> if it has a cache for app_uid
};

// Cheap enough for the critical path (a few dozen syscalls, no copying); never fails: the
// worst case is kNone (node runs without a compile cache).
//
// Order: the volume (trusted and writable, see dir_trust.hpp) when it has this build or there
// is no seed for it; the seed read-only (with the volume usable but empty: seeded_from_seed);
// $TMPDIR/knext-compile-cache-<uid>; none.
//
// Why node reads the seed rather than an empty volume while the copy runs: node creates its
// <node tag> directory in NODE_COMPILE_CACHE as it starts, so the copy's atomic rename onto
// <build-id> would find it non-empty and lose, and the volume would never get the seed.
//
// With a read-only directory node still loads every entry it finds; if its <node tag>
// directory is missing it cannot create it and runs with the cache off. Failed writes are
// silent either way (node's src/compile_cache.cc only reports them under
// NODE_DEBUG_NATIVE=COMPILE_CACHE).
CachePlacement place_compile_cache(const CacheOptions& options);

// Copies the seed into the volume when placement.seeded_from_seed (otherwise does nothing):
// into <cache_dir>/<app>/.tmp-<build-id>-<pid>-XXXXXX, then renamed onto <build-id>. If another
// launcher got there first the copy is deleted and theirs is kept. Meant for a thread after
// node is spawned: it copies the whole seed.
Status seed_volume(const CachePlacement& placement, const CacheOptions& options);

// <build-id> of the volume, opened through the held <app> fd and checked again (seed_volume
// may have renamed a new directory onto it since place_compile_cache).
Expected<Fd> open_volume_build(const CachePlacement& placement, uid_t uid);

// The <app> component: app_name, or default_app_name(app_dir), with anything outside
// [A-Za-z0-9._-] replaced by '_' and no leading dot.
std::string cache_app_name(const CacheOptions& options);

}  // namespace knext
