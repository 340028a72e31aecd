#include "launcher/compile_cache_setup.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "cachewarm/compile_cache/cache_eviction.hpp"
#include "cachewarm/dir_ops.hpp"
#include "common/log.hpp"
#include "common/pool_job.hpp"
#include "common/spawn.hpp"

namespace knext {

namespace {

struct MaintenanceResult {
  std::string seed_error;
  size_t temp_files_removed = 0;
  EvictionReport eviction;
};

}  // namespace

CompileCacheSetup prepare_compile_cache(const CachePlan& plan, std::vector<std::string>& env) {
  CompileCacheSetup setup;
  if (plan.mode == CompileCache::kOff) return setup;
  bool postwarm = plan.mode == CompileCache::kPostwarm;
  std::string dir;
  if (plan.own_dir) {
    log::info("compile cache: NODE_COMPILE_CACHE=" + *plan.own_dir +
              " was set by you; left as it is");
    dir = *plan.own_dir;
  } else {
    setup.options = plan.options;
    setup.placement = place_compile_cache(setup.options);
    if (setup.placement.source == CacheSource::kNone) {
      log::warn("compile cache off: " + setup.placement.reason);
      return setup;
    }
    dir = setup.placement.dir;
    set_env(env, "NODE_COMPILE_CACHE", dir);
    log::info(fmt::format("compile cache{}: {} as {} ({}: {})",
                          postwarm ? " (node + post-warm)" : "", setup.placement.path, dir,
                          cache_source_name(setup.placement.source), setup.placement.reason));
  }
  setup.mode = postwarm ? CompileCache::kPostwarm : CompileCache::kNode;
  if (postwarm) {
    // The hook keeps its post-warm cache as one file beside node's own directory.
    set_env(env, "KNEXT_COMPILE_CACHE", "postwarm");
    set_env(env, "KNEXT_POSTWARM_DIR", dir);
  }
  return setup;
}

namespace {

void log_eviction(const EvictionReport& eviction) {
  if (!eviction.removed.empty()) {
    log::info(fmt::format("compile cache: evicted {} old build(s), {} -> {} bytes",
                          eviction.removed.size(), eviction.bytes_before, eviction.bytes_after));
  }
  if (!eviction.error.empty()) log::warn("compile cache eviction: " + eviction.error);
}

EvictionReport evict_for(const CompileCacheSetup& setup) {
  EvictionReport report = evict_old_builds_at(setup.placement.dirs->volume_app.get(),
                                              setup.placement.build_id, setup.options.max_bytes);
  if (!report.error.empty()) {
    report.error = std::filesystem::path(setup.placement.volume_dir).parent_path().string() + ": " +
                   report.error;
  }
  return report;
}

}  // namespace

void start_cache_maintenance(uv_loop_t* loop, const CompileCacheSetup& setup) {
  if (setup.placement.volume_dir.empty()) return;
  PoolJob<MaintenanceResult>::queue(
      loop,
      [setup] {
        MaintenanceResult r;
        if (auto seeded = seed_volume(setup.placement, setup.options); !seeded) {
          r.seed_error = seeded.error().message;
        }
        if (auto build = open_volume_build(setup.placement, setup.options.app_uid)) {
          r.temp_files_removed = remove_stale_temp_files_at(build->get());
        }
        r.eviction = evict_for(setup);
        return r;
      },
      [placement = setup.placement](MaintenanceResult& r) {
        if (placement.seeded_from_seed) {
          if (r.seed_error.empty()) {
            log::info("compile cache: copied the image's cache into " + placement.volume_dir);
          } else {
            log::warn("compile cache: could not seed the volume: " + r.seed_error);
          }
        }
        if (r.temp_files_removed > 0) {
          log::info(fmt::format("compile cache: removed {} empty temp file(s) left by a full disk",
                                r.temp_files_removed));
        }
        log_eviction(r.eviction);
      });
}

CacheCount count_cache_at(int dir_fd) {
  // Node's entries sit a level or two below its directory; anything far deeper is not its.
  constexpr int kCacheDepth = 4;
  CacheCount count;
  for_each_file_at(dir_fd, kCacheDepth, [&](const std::string&, const struct stat& st) {
    if (st.st_size == 0) return;  // 0-byte files are leaked temps
    ++count.entries;
    count.bytes += static_cast<uint64_t>(st.st_size);
  });
  return count;
}

CacheCount count_cache(const std::string& dir) {
  auto fd = open_dir_at(AT_FDCWD, dir);
  return fd ? count_cache_at(fd->get()) : CacheCount{};
}

void after_cache_flush(uv_loop_t* loop, const CompileCacheSetup& setup, LaunchState& state) {
  if (setup.placement.node_dir_fd() < 0) return;
  struct FlushResult {
    CacheCount count;
    EvictionReport eviction;
  };
  PoolJob<FlushResult>::queue(
      loop,
      [setup] {
        FlushResult r;
        r.count = count_cache_at(setup.placement.node_dir_fd());
        if (!setup.placement.volume_dir.empty()) r.eviction = evict_for(setup);
        return r;
      },
      [&state](FlushResult& r) {
        state.compile_cache_entries = r.count.entries;
        state.compile_cache_bytes = r.count.bytes;
        log::info(fmt::format("compile cache on disk: {} entries, {} bytes", r.count.entries,
                              r.count.bytes));
        log_eviction(r.eviction);
      });
}

}  // namespace knext
