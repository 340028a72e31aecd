#pragma once
// Keeping a shared cache volume bounded and clean. Safe with other launchers doing the same at
// the same time: whatever vanishes under us is someone else's work done.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace knext {

struct EvictionReport {
  uint64_t bytes_before = 0;  // every build directory, apparent file sizes
  uint64_t bytes_after = 0;
  std::vector<std::string> removed;     // build ids, least recently used first
  size_t abandoned_copies_removed = 0;  // .tmp-* left by launchers that died mid-copy or -evict
  std::string error;                    // one line; empty when the directory could be read
};

// In <cache_dir>/<app>: while the build directories add up to more than max_bytes, removes
// whole builds, least recently used (directory mtime) first, never keep_build_id. A victim is
// renamed to .tmp-evict-* first, so no launcher ever sees a half-deleted build. It stats every
// file of every build: run it off the critical path (after the spawn, on a thread).
EvictionReport evict_old_builds(const std::string& app_cache_dir, const std::string& keep_build_id,
                                uint64_t max_bytes);
// The same in the held <app> directory fd (the launcher's: never the path again).
EvictionReport evict_old_builds_at(int app_dir_fd, const std::string& keep_build_id,
                                   uint64_t max_bytes);

// Marks a build directory as just used (its mtime), for evict_old_builds.
// place_compile_cache does this for the volume directory it checks.
Status touch_build_dir(const std::string& build_dir);

// node names a temp file <8 hex digits of the key>.XXXXXX (uv_fs_mkstemp, [A-Za-z0-9]) next to
// the entry it replaces (src/compile_cache.cc, CompileCacheHandler::Persist).
bool is_node_temp_name(std::string_view name);

// Removes the 0-byte temp files node leaks when a write fails (nodejs/node#65473) from `dir`
// (a NODE_COMPILE_CACHE directory) and its <node tag> subdirectories. Only files older than
// min_age: a node flushing right now has just created its temp file and is about to fill it.
size_t remove_stale_temp_files(const std::string& dir,
                               std::chrono::seconds min_age = std::chrono::seconds(60));
size_t remove_stale_temp_files_at(int dir_fd,
                                  std::chrono::seconds min_age = std::chrono::seconds(60));

}  // namespace knext
