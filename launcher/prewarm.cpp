#include "launcher/prewarm.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "cachewarm/dir_ops.hpp"
#include "cachewarm/page_cache/manifest.hpp"
#include "cachewarm/page_cache/mapped_pages_file.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "launcher/compile_cache_setup.hpp"
#include "launcher/run.hpp"

namespace knext {
namespace fs = std::filesystem;

namespace {

// Each cache file's mtime: a file written again on the check run is an entry compiled again.
using Snapshot = std::map<std::string, std::pair<time_t, long>>;

Snapshot snapshot(const std::string& dir) {
  constexpr int kDepth = 16;
  Snapshot files;
  for_each_file(dir, kDepth, [&](const std::string& path, const struct stat& st) {
    files[path] = {st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
  });
  return files;
}

size_t rewritten(const Snapshot& before, const Snapshot& after) {
  size_t n = 0;
  for (const auto& [path, mtime] : after) {
    auto it = before.find(path);
    if (it == before.end() || it->second != mtime) ++n;
  }
  return n;
}

// The pages of node's binary and libraries node mapped to get here: the binary prewarm's list.
// Best effort: without it a start prewarms the whole binary, so a failure is a warning.
struct PagesRecorder {
  std::string path;
  std::string summary = "none";

  void record(pid_t pid) {
    auto files = mapped_pages(pid);
    Status written = files ? write_mapped_pages(path, *files) : Status(files.error());
    if (!written) {
      log::warn("--prewarm: node's mapped pages not recorded: " + written.error().message);
      summary = "not recorded";
      return;
    }
    uint64_t bytes = 0;
    for (const auto& file : *files) bytes += total_bytes(file.ranges);
    summary = fmt::format("{:.1f} MiB of {} files", static_cast<double>(bytes) / (1 << 20),
                          files->size());
  }
};

int fail(const std::string& message) {
  std::fprintf(stderr, "knext-launch: --prewarm: %s\n", message.c_str());
  return 1;
}

}  // namespace

int run_prewarm(const Config& config, const LaunchInputs& inputs, Timeline& timeline) {
  auto plan = plan_prewarm(config, inputs);
  if (!plan) return fail(plan.error().message);
  std::error_code ec;
  fs::create_directories(config.cache_seed, ec);
  if (ec) return fail("cannot create " + config.cache_seed + ": " + ec.message());
  // The seed is read by the app's uid at run time; nobody else may write it.
  chmod(config.cache_seed.c_str(), 0755);

  const std::string& manifest = plan->manifest_path;
  PagesRecorder pages{plan->mapped_pages_path};
  auto record_pages = [&pages](pid_t pid) { pages.record(pid); };

  auto started = SteadyClock::now();
  std::string dir;
  int code = run_supervised(
      plan->bake, timeline,
      {.stop_after_flush = true, .compile_cache_dir = &dir, .on_flushed = record_pages});
  if (code != 0) return fail(fmt::format("the app did not warm up and flush (exit {})", code));
  if (dir.empty()) return fail("no compile cache directory could be used (see the log above)");
  auto baked = count_cache(dir);
  if (baked.entries == 0) {
    return fail("node wrote no compile cache into " + dir + " (node >= 22.1 is needed)");
  }

  // A second start must find every entry: none compiled (and so written) again.
  auto before = snapshot(dir);
  code = run_supervised(
      plan->check, timeline,
      {.stop_after_flush = true, .compile_cache_dir = &dir, .on_flushed = record_pages});
  if (code != 0) return fail(fmt::format("the check run did not warm up (exit {})", code));
  size_t misses = rewritten(before, snapshot(dir));
  auto after = count_cache(dir);
  auto recorded = read_manifest(manifest);
  std::printf(
      "knext-launch --prewarm: %llu entries, %llu bytes in %s; check run recompiled %zu; "
      "manifest %s (%zu files); node's pages %s; %.0f ms\n",
      static_cast<unsigned long long>(after.entries), static_cast<unsigned long long>(after.bytes),
      dir.c_str(), misses, manifest.c_str(), recorded ? recorded->paths.size() : size_t{0},
      pages.summary.c_str(), ms_between(started, SteadyClock::now()));
  std::fflush(stdout);
  if (misses > 0) {
    return fail(
        fmt::format("{} entries were compiled again on the check run: the cache does not "
                    "match this app (paths or node version differ?)",
                    misses));
  }
  return 0;
}

}  // namespace knext
