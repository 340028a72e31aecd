#include "bench/baked_manifest.hpp"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "bench/bench_config.hpp"
#include "cachewarm/page_cache/manifest.hpp"
#include "cachewarm/page_cache/mapped_pages_file.hpp"
#include "common/boost_process.hpp"
#include "common/exit_status.hpp"
#include "common/process_wait.hpp"
#include "probes/warm/warm_record.hpp"

namespace bp = boost::process;
namespace fs = std::filesystem;

namespace knext::bench {

Expected<BakedManifest> BakedManifest::bake(const std::string& app_dir,
                                            const std::vector<std::string>& command,
                                            const std::vector<std::string>& warm_paths,
                                            const std::string& seed_dir) {
  std::string path = manifest_path_for(app_dir);
  std::error_code ec;
  if (fs::exists(path, ec)) return BakedManifest(std::string());

  std::vector<std::string> args{"--prewarm", "--cache-seed=" + seed_dir, "--admin-port=0",
                                "--log-level=warn"};
  for (const auto& p : warm_paths) args.push_back("--warm-path=" + p);
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  bp::child child;
  try {
    child = bp::child(bp::exe = launcher_command(), bp::args = args, bp::start_dir = app_dir,
                      bp::std_in<bp::null, bp::std_out> bp::null, bp::std_err > bp::null);
  } catch (const bp::process_error& e) {
    return Error{std::string("cannot start knext-launch --prewarm: ") + e.what()};
  }
  BakedManifest baked(app_dir);  // from here on, whatever --prewarm wrote is removed again
  if (!wait_with_timeout(child, std::chrono::seconds(120))) {
    child.terminate();
    return Error{"knext-launch --prewarm did not finish within 120 s"};
  }
  int code = exit_code_from_wait_status(child.native_exit_code());
  if (code != 0) return Error{fmt::format("knext-launch --prewarm exited {}", code)};
  if (!fs::exists(path, ec)) return Error{"knext-launch --prewarm wrote no manifest"};
  return baked;
}

BakedManifest::BakedManifest(BakedManifest&& other) noexcept : app_dir_(std::move(other.app_dir_)) {
  other.app_dir_.clear();
}

BakedManifest::~BakedManifest() {
  if (app_dir_.empty()) return;
  std::error_code ec;
  fs::remove(manifest_path_for(app_dir_), ec);
  fs::remove(mapped_pages_path_for(app_dir_), ec);
  fs::remove(warm_record_path_for(app_dir_), ec);  // the warm-up record --prewarm writes
}

}  // namespace knext::bench
