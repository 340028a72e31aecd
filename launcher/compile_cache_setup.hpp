#pragma once
#include <uv.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cachewarm/compile_cache/cache_placement.hpp"
#include "launcher/config.hpp"
#include "probes/launch_state.hpp"

namespace knext {

// The cache's inputs, decided by the launch plan (launcher/launch_plan.hpp).
struct CachePlan {
  CompileCache mode = CompileCache::kOff;  // kOff, kNode or kPostwarm
  std::optional<std::string> own_dir;      // NODE_COMPILE_CACHE the user set: left as it is
  CacheOptions options;
};

struct CompileCacheSetup {
  CompileCache mode = CompileCache::kOff;  // what is actually used
  CacheOptions options;
  CachePlacement placement;
};

// Chooses the cache directory (cheap: runs before the spawn) and sets NODE_COMPILE_CACHE in the
// child's environment. A NODE_COMPILE_CACHE the user set is left alone. Logs one line.
CompileCacheSetup prepare_compile_cache(const CachePlan& plan, std::vector<std::string>& env);

// After the spawn, on the libuv thread pool: seeds the volume from the image's cache, marks the
// build as used, removes node's leaked temp files and evicts old builds over the cap.
void start_cache_maintenance(uv_loop_t* loop, const CompileCacheSetup& setup);

// After node flushed: counts the cache's files and bytes into `state` (for /metrics) and evicts
// old builds if the flush took the volume over the cap. On the thread pool.
void after_cache_flush(uv_loop_t* loop, const CompileCacheSetup& setup, LaunchState& state);

struct CacheCount {
  uint64_t entries = 0;
  uint64_t bytes = 0;
};
CacheCount count_cache(const std::string& dir);
CacheCount count_cache_at(int dir_fd);

}  // namespace knext
