#include "launcher/fs_prewarm.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "cachewarm/build_id.hpp"
#include "cachewarm/page_cache/manifest.hpp"
#include "cachewarm/page_cache/mapped_pages_file.hpp"
#include "cachewarm/page_cache/nft_trace.hpp"
#include "cachewarm/page_cache/page_cache_residency.hpp"
#include "common/log.hpp"
#include "launcher/pages_recording.hpp"

namespace knext {
namespace {

constexpr uint64_t kBinaryBudget = 512ULL << 20;

struct FileList {
  std::vector<std::string> files;
  std::string source;  // for the log line
};

// A manifest baked where the app no longer is (an image that moved it, a mount over it) names
// files node will not read: most of its paths must lie under the app directory.
bool recorded_here(const PrewarmManifest& manifest, const std::string& app_dir) {
  std::string prefix = app_dir + "/";
  auto under = std::count_if(manifest.paths.begin(), manifest.paths.end(), [&](const auto& path) {
    return path.compare(0, prefix.size(), prefix) == 0;
  });
  return static_cast<size_t>(under) * 2 > manifest.paths.size();
}

// Runs on the thread pool: reading the manifest or the traces is file I/O too.
FileList choose_files(const std::string& app_dir, const std::vector<std::string>& warm_paths) {
  auto manifest = read_manifest(manifest_path_for(app_dir));
  bool usable = manifest && recorded_here(*manifest, app_dir) &&
                (manifest->build_id.empty() || manifest->build_id == read_build_id(app_dir));
  if (usable) return {manifest->paths, "the --prewarm manifest"};
  auto traces = trace_prewarm_files(app_dir, warm_paths);
  bool has_server_trace = std::any_of(
      traces.traces.begin(), traces.traces.end(),
      [](const std::string& t) { return t.find("next-server.js.nft.json") != std::string::npos; });
  std::string why_not = manifest ? " (the manifest is for another build or directory)" : "";
  if (has_server_trace) return {traces.files, "Next's .nft.json traces" + why_not};
  return {{}, "nothing (no --prewarm manifest, no server trace)"};
}

// A warm start (this node ran the image before) needs no prewarm, and queueing the whole list
// would only take CPU from node's boot (README "Page-cache prewarm").
// Sampling a few files of the list with mincore tells; a file the launcher may not see
// (mincore reports only the caller's own or writable files) counts as not cached.
bool already_cached(const std::vector<std::string>& files) {
  constexpr size_t kSamples = 8;
  if (files.empty()) return false;
  size_t step = std::max<size_t>(1, files.size() / kSamples);
  for (size_t i = 0; i < files.size(); i += step) {
    auto fraction = resident_fraction(files[i]);
    if (!fraction || *fraction < 0.99) return false;
  }
  return true;
}

struct BinaryTargets {
  std::vector<PrewarmTarget> targets;
  std::string source;  // for the log line
};

// Runs on the thread pool. The pages --prewarm recorded in the app, else those a first start
// recorded on the cache volume, when they are for this very binary (same path, size and
// mtime); else the whole binary.
BinaryTargets choose_binary_targets(const std::string& binary, const std::string& app_dir,
                                    const CachePlacement& cache, uid_t uid) {
  std::error_code ec;
  std::string real = std::filesystem::canonical(binary, ec).string();
  auto baked = recorded_pages_for(mapped_pages_path_for(app_dir), real);
  if (!baked.targets.empty()) return {std::move(baked.targets), "the pages --prewarm recorded"};
  if (!cache.volume_dir.empty()) {
    auto volume = volume_recorded_pages(cache, uid, real);
    if (!volume.targets.empty()) {
      return {std::move(volume.targets), "the pages recorded on the cache volume"};
    }
  }
  return {whole_files({binary}), "the whole binary (" + baked.why_not + ")"};
}

std::unique_ptr<PageCachePrewarm> start_binary_prewarm(uv_loop_t* loop, const LaunchPlan& plan,
                                                       const CachePlacement& cache, uid_t uid,
                                                       Timeline& timeline) {
  if (!plan.binary) return nullptr;
  auto source = std::make_shared<std::string>();
  PrewarmOptions options;
  options.parallelism = 1;
  options.byte_budget = kBinaryBudget;
  // Queued with WILLNEED, not copied through a buffer: when node is already cached (the usual
  // warm start) a copy of the whole binary would compete with node for a core.
  options.method = PrewarmMethod::kAdvise;
  auto prewarm = std::make_unique<PageCachePrewarm>(loop, options);
  // No residency check here: a warm node binary is only partly resident (the part node
  // touches), and queueing what is cached costs a pool thread only a few ms.
  prewarm->start(
      [binary = *plan.binary, app_dir = plan.app_dir, cache, uid, source] {
        auto chosen = choose_binary_targets(binary, app_dir, cache, uid);
        *source = std::move(chosen.source);
        return std::move(chosen.targets);
      },
      [source, &timeline](const PrewarmReport& r) {
        timeline.mark("binary-prewarmed",
                      fmt::format("{} bytes in {:.1f} ms from {}{}", r.bytes, r.ms, *source,
                                  r.cancelled ? " (cancelled)" : ""));
      });
  return prewarm;
}

std::unique_ptr<PageCachePrewarm> start_files_prewarm(uv_loop_t* loop, const LaunchPlan& plan,
                                                      Timeline& timeline) {
  auto source = std::make_shared<std::string>();
  PrewarmOptions options;
  // WILLNEED, not read copies: as good on cold and slow storage, and on a warm page cache
  // nearly free, where copies cost node a core's time (README "Page-cache prewarm").
  options.method = PrewarmMethod::kAdvise;
  auto prewarm = std::make_unique<PageCachePrewarm>(loop, options);
  // Auto critical paths are the worker's to pick; the traces start with the route "/" meanwhile.
  auto warm_paths = plan.warm.paths.empty() ? std::vector<std::string>{"/"} : plan.warm.paths;
  prewarm->start(
      [app_dir = plan.app_dir, warm_paths = std::move(warm_paths), source] {
        auto list = choose_files(app_dir, warm_paths);
        *source = list.source;
        if (already_cached(list.files)) {
          *source += ", all sampled files already in the page cache";
          return std::vector<PrewarmTarget>{};
        }
        return whole_files(std::move(list.files));
      },
      [source, &timeline](const PrewarmReport& r) {
        if (r.files == 0 && r.failed == 0) {
          log::info("page cache: no prewarm, from " + *source);
          return;
        }
        timeline.mark("page-cache-prewarmed",
                      fmt::format("{} files, {} bytes in {:.1f} ms from {}{}", r.files, r.bytes,
                                  r.ms, *source, r.cancelled ? " (cancelled)" : ""));
      });
  return prewarm;
}

}  // namespace

FsPrewarm start_fs_prewarm(uv_loop_t* loop, const LaunchPlan& plan, const CachePlacement& cache,
                           uid_t uid, Timeline& timeline) {
  if (!plan.prewarm_fs) return {};
  FsPrewarm prewarm;
  prewarm.binary = start_binary_prewarm(loop, plan, cache, uid, timeline);
  prewarm.files = start_files_prewarm(loop, plan, timeline);
  return prewarm;
}

void record_node_pages(uv_loop_t* loop, const LaunchPlan& plan, const CachePlacement& cache,
                       uid_t uid, pid_t child) {
  if (cache.volume_dir.empty() || !plan.prewarm_fs || !plan.binary) return;
  record_pages_on_volume(loop, cache, uid, plan.app_dir, *plan.binary, child);
}

}  // namespace knext
