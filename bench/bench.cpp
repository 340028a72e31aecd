#include "bench/bench.hpp"

#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/server_run.hpp"
#include "bench/stats.hpp"
#include "cachewarm/page_cache_residency.hpp"
#include "common/boost_process.hpp"

namespace knext::bench {
namespace {

struct Variant {
  std::string name;
  std::vector<std::string> argv;
  bool needs_priming = false;  // run once unmeasured first (fills its compile cache)
  std::vector<double> port_open;
  std::vector<double> first_render;
  std::vector<double> next_request;
};

std::string self_exe() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "knext-launch" : path.string();
}

// A scratch compile-cache volume for the bench, removed at the end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "knext-bench-cache-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Variant launched(const std::string& name, const std::vector<std::string>& flags,
                 const std::vector<std::string>& command, bool needs_priming) {
  std::vector<std::string> argv{self_exe(), "--log-level=warn", "--admin-port=0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("--");
  argv.insert(argv.end(), command.begin(), command.end());
  return Variant{name, argv, needs_priming, {}, {}, {}};
}

std::vector<Variant> variants(const std::vector<std::string>& command,
                              const std::string& cache_root) {
  // Each cached variant gets its own volume so their caches never mix.
  auto cache = [&](const std::string& mode) {
    return launched("knext " + mode,
                    {"--compile-cache=" + mode, "--app-name=" + mode, "--cache-dir=" + cache_root},
                    command, true);
  };
  return {
      Variant{"plain " + command.front(), command, false, {}, {}, {}},
      launched("knext no cache", {"--compile-cache=off"}, command, false),
      cache("node"),
      cache("postwarm"),
  };
}

// Every file of the app (node_modules included) and the node binary: what a fresh node reads.
std::vector<std::string> app_and_node_files(const std::vector<std::string>& command) {
  std::vector<std::string> files;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(".", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code entry_ec;
    if (it->is_regular_file(entry_ec)) {
      files.push_back(std::filesystem::absolute(it->path(), entry_ec).string());
    }
  }
  auto node = boost::process::search_path(command.front());
  if (!node.empty()) files.push_back(std::filesystem::canonical(node.string(), ec).string());
  return files;
}

void print_table(const std::vector<Variant>& all, int runs, bool cold) {
  std::printf(
      "\ncold start, %d runs per variant, alternating, %s (ms from spawn; ready = PORT accepts, "
      "first = first GET / answered, next = the GET after it)\n",
      runs,
      cold ? "COLD page cache: app files and node evicted with posix_fadvise(DONTNEED) before "
             "each run"
           : "warm page cache");
  std::printf("%-18s %10s %10s %10s %12s %12s %8s %10s\n", "variant", "ready p50", "ready p90",
              "ready min", "first p50", "first p90", "vs plain", "next p50");
  double base = summarize(all.front().first_render).median;
  for (const auto& v : all) {
    auto port = summarize(v.port_open);
    auto render = summarize(v.first_render);
    auto next = summarize(v.next_request);
    std::printf("%-18s %10.1f %10.1f %10.1f %12.1f %12.1f %7.2fx %10.1f\n", v.name.c_str(),
                port.median, port.p90, port.min, render.median, render.p90,
                base > 0 ? render.median / base : 0.0, next.median);
  }
  std::fflush(stdout);
}

}  // namespace

int run(const Config& config) {
  std::vector<std::string> command = effective_command(config);
  if (config.command.empty() && !std::filesystem::exists("server.js")) {
    std::fprintf(stderr,
                 "knext-launch: --bench: no server.js in %s; run it in the standalone output "
                 "directory or give the server command after --\n",
                 std::filesystem::current_path().c_str());
    return 2;
  }
  if (command.front().find('/') == std::string::npos &&
      boost::process::search_path(command.front()).empty()) {
    std::fprintf(stderr, "knext-launch: --bench: '%s' is not in PATH\n", command.front().c_str());
    return 2;
  }

  ScratchDir cache;
  std::vector<bool> modes;
  if (config.bench_warm_page_cache) modes.push_back(false);
  if (config.bench_cold_page_cache) modes.push_back(true);
  auto files = app_and_node_files(command);
  for (bool cold : modes) {
    auto all = variants(command, cache.path());
    for (auto& v : all) {
      if (!v.needs_priming) continue;
      std::fprintf(stderr, "priming %s (fills its compile cache)\n", v.name.c_str());
      if (auto primed = measure_server_run({v.argv, {}, "/", 60'000}); !primed) {
        std::fprintf(stderr, "knext-launch: --bench: %s: %s\n", v.name.c_str(),
                     primed.error().message.c_str());
        return 1;
      }
    }
    for (int run = 1; run <= config.bench_runs; ++run) {
      for (auto& v : all) {
        if (cold) evict_from_page_cache(files);
        auto result = measure_server_run({v.argv, {}, "/", 60'000});
        if (!result) {
          std::fprintf(stderr, "knext-launch: --bench: %s: %s\n", v.name.c_str(),
                       result.error().message.c_str());
          return 1;
        }
        v.port_open.push_back(result->port_open_ms);
        v.first_render.push_back(result->first_render_ms);
        v.next_request.push_back(result->next_request_ms);
        std::fprintf(stderr,
                     "%s run %d/%d %-16s ready %7.1f ms  first response %7.1f ms (HTTP %ld)\n",
                     cold ? "cold" : "warm", run, config.bench_runs, v.name.c_str(),
                     result->port_open_ms, result->first_render_ms, result->first_status);
      }
    }
    print_table(all, config.bench_runs, cold);
  }
  return 0;
}

}  // namespace knext::bench
