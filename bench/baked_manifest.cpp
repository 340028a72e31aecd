#include "bench/baked_manifest.hpp"

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "bench/bench_config.hpp"
#include "bench/stop_on_signal.hpp"
#include "cachewarm/page_cache/manifest.hpp"
#include "cachewarm/page_cache/mapped_pages_file.hpp"
#include "common/boost_process.hpp"
#include "common/exit_status.hpp"
#include "common/process_wait.hpp"
#include "probes/warm/warm_record.hpp"

namespace bp = boost::process;
namespace fs = std::filesystem;

namespace knext::bench {
namespace {

// Written before --prewarm runs, removed with what it baked: one left behind means a bench was
// killed mid-run, and the record and manifests beside it are that run's, not the app's.
std::string marker_path_for(const std::string& app_dir) {
  return app_dir + "/.next/knext-bench-baked";
}

std::array<std::string, 4> baked_paths(const std::string& app_dir) {
  return {manifest_path_for(app_dir), mapped_pages_path_for(app_dir), warm_record_path_for(app_dir),
          marker_path_for(app_dir)};
}

void remove_baked(const std::string& app_dir) {
  std::error_code ec;
  for (const auto& p : baked_paths(app_dir)) fs::remove(p, ec);
}

}  // namespace

Expected<BakedManifest> BakedManifest::bake(const std::string& app_dir,
                                            const std::vector<std::string>& command,
                                            const std::vector<std::string>& warm_paths,
                                            const std::string& seed_dir) {
  std::string path = manifest_path_for(app_dir);
  std::error_code ec;
  if (fs::exists(marker_path_for(app_dir), ec)) {
    std::fprintf(stderr, "removing what a killed bench baked into %s/.next\n", app_dir.c_str());
    remove_baked(app_dir);
  }
  if (fs::exists(path, ec)) return BakedManifest(std::string());
  if (FILE* marker = std::fopen(marker_path_for(app_dir).c_str(), "w")) {
    std::fclose(marker);
  } else {
    return Error{"cannot write " + marker_path_for(app_dir)};
  }
  BakedManifest baked(app_dir);  // from here on, whatever --prewarm wrote is removed again

  std::vector<std::string> args{"--prewarm", "--cache-seed=" + seed_dir, "--admin-port=0",
                                "--log-level=warn"};
  for (const auto& p : warm_paths) args.push_back("--warm-path=" + p);
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  bp::child child;
  StopChildOnSignal stop_child(std::chrono::seconds(10));
  try {
    child = bp::child(bp::exe = launcher_command(), bp::args = args, bp::start_dir = app_dir,
                      bp::std_in<bp::null, bp::std_out> bp::null, bp::std_err > bp::null);
  } catch (const bp::process_error& e) {
    stop_child.failed();
    return Error{std::string("cannot start knext-launch --prewarm: ") + e.what()};
  }
  stop_child.spawned(child.id());
  if (!wait_with_timeout(child, std::chrono::seconds(120))) {
    child.terminate();
    return Error{"knext-launch --prewarm did not finish within 120 s"};
  }
  int code = exit_code_from_wait_status(child.native_exit_code());
  if (code != 0) return Error{fmt::format("knext-launch --prewarm exited {}", code)};
  if (!fs::exists(path, ec)) return Error{"knext-launch --prewarm wrote no manifest"};
  return baked;
}

BakedManifest::BakedManifest(std::string app_dir)
    : app_dir_(std::move(app_dir)),
      on_stop_(app_dir_.empty() ? OnStopSignal()
                                : OnStopSignal([dir = app_dir_] { remove_baked(dir); })) {}

BakedManifest::BakedManifest(BakedManifest&& other) noexcept
    : app_dir_(std::move(other.app_dir_)), on_stop_(std::move(other.on_stop_)) {
  other.app_dir_.clear();
}

BakedManifest::~BakedManifest() {
  if (app_dir_.empty()) return;
  remove_baked(app_dir_);
}

}  // namespace knext::bench
