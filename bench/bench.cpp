#include "bench/bench.hpp"

#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bench/baked_manifest.hpp"
#include "bench/bench_report.hpp"
#include "bench/load_test.hpp"
#include "bench/preload_off.hpp"
#include "bench/scenario.hpp"
#include "bench/server_run.hpp"
#include "bench/slow_storage.hpp"
#include "bench/stats.hpp"
#include "bench/stop_on_signal.hpp"
#include "bench/unwarmed_routes.hpp"
#include "bench/wake_burst.hpp"
#include "cachewarm/dir_ops.hpp"
#include "cachewarm/page_cache/page_cache_residency.hpp"
#include "common/boost_process.hpp"
#include "common/loopback.hpp"
#include "common/self_exe.hpp"
#include "common/spawn.hpp"

namespace fs = std::filesystem;

namespace knext::bench {
namespace {

// A scratch compile-cache volume for the bench, removed at the end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "knext-bench-cache-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return;
    path_ = pattern;
    on_stop_ = OnStopSignal([dir = path_] {
      std::error_code ec;
      fs::remove_all(dir, ec);
    });
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  OnStopSignal on_stop_;
};

void add_files_under(const std::string& dir, std::vector<std::string>& files) {
  constexpr int kDepth = 64;  // node_modules nests deep
  std::error_code ec;
  std::string root = fs::absolute(dir, ec).string();
  for_each_file(root, kDepth, [&](const std::string& rel, const struct stat&) {
    files.push_back(root + "/" + rel);
  });
}

std::string resolved(const std::string& program) {
  auto found = resolve_command(program);
  if (!found) return program;
  std::error_code ec;
  auto canonical = fs::canonical(*found, ec);
  return ec ? *found : canonical.string();
}

// What a fresh start reads: the app (node_modules included), the program binary (node) and the
// compile caches. Evicting them makes each run cold.
std::vector<std::string> files_to_evict(const std::string& app_dir, const std::string& program,
                                        const std::string& cache_root) {
  std::vector<std::string> files;
  add_files_under(app_dir, files);
  add_files_under(cache_root, files);
  files.push_back(resolved(program));
  return files;
}

// The app and the server command as the runs see them: directly, or through the slow mount.
struct Placement {
  std::string app_dir;
  std::vector<std::string> command;
};

// PORT from the environment, when set: every run uses it, so it must be a free port.
Expected<int> requested_port() {
  const char* text = std::getenv("PORT");
  if (text == nullptr || *text == '\0') return 0;
  auto port = parse_port(text);
  if (!port) return Error{fmt::format("PORT='{}' is not a port number from 1 to 65535", text)};
  if (loopback_accepts(*port)) {
    return Error{
        fmt::format("port {} (from PORT) is in use; stop what listens there or unset "
                    "PORT to use a free port per run",
                    *port)};
  }
  return *port;
}

class Progress {
 public:
  explicit Progress(size_t total) : total_(total), tty_(isatty(STDERR_FILENO) == 1) {}
  void update(const std::string& scenario, const Variant& v, int run, int runs,
              const ServerRunResult& r, const WakeBurst& burst) {
    ++done_;
    std::string line = fmt::format(
        "[{}/{}] {} run {}/{} {:<20} ready {:7.1f} ms  first {:7.1f} ms (HTTP {})  burst {}/{} "
        "max {:.0f} ms",
        done_, total_, scenario, run, runs, v.name, r.ready_ms,
        r.paths.empty() ? 0.0 : r.paths.front().first_ms,
        r.paths.empty() ? 0 : r.paths.front().status, burst.ok, burst.requests,
        summarize(burst.done_ms).max);
    if (tty_) {
      std::fprintf(stderr, "\r%-110s", line.c_str());
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  }
  void note(const std::string& text) {
    if (tty_) std::fprintf(stderr, "\r%-110s\r", "");
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  void end_table() {
    if (tty_) std::fprintf(stderr, "\r%-110s\r", "");
  }

 private:
  size_t total_;
  size_t done_ = 0;
  bool tty_;
};

struct BenchInputs {
  const BenchConfig& config;
  std::vector<std::string> paths;
  int port = 0;
  std::string cache_root;
  std::vector<std::string> unwarmed;  // routes the build lists that are not warm paths
  bool preload_off = false;           // the app's server.js has a preload-off copy
};

VariantInputs variant_inputs(const BenchInputs& in, const std::vector<std::string>& command) {
  VariantInputs v{command,
                  launcher_command(),
                  in.cache_root,
                  in.config.knext_warm_auto ? std::vector<std::string>{} : in.paths,
                  in.config.variants,
                  {}};
  if (in.preload_off) v.preload_off_command = {command.front(), PreloadOffServer::kFileName};
  return v;
}

Status run_scenario(Scenario& scenario, const BenchInputs& in, const Placement& placement,
                    Progress& progress) {
  scenario.variants = make_variants(variant_inputs(in, placement.command));
  auto evict = files_to_evict(placement.app_dir, placement.command.front(), in.cache_root);
  auto request = [&](const Variant& v) {
    return ServerRunRequest{v.argv, {}, placement.app_dir, in.paths, in.unwarmed, in.port, 60'000};
  };
  for (auto& v : scenario.variants) {
    if (!v.needs_priming) continue;
    progress.note(fmt::format("{}: priming {} (fills its compile cache)", scenario.name, v.name));
    if (auto primed = measure_server_run(request(v)); !primed) {
      return Error{v.name + ": " + primed.error().message};
    }
  }
  int runs = in.config.runs;
  for (int run = 1; run <= runs; ++run) {
    for (auto& v : scenario.variants) {
      if (scenario.cold) evict_from_page_cache(evict);
      auto result = measure_server_run(request(v));
      if (!result) return Error{v.name + ": " + result.error().message};
      v.cache_entries.push_back(v.cache_dir.empty() ? 0 : count_files(v.cache_dir));
      if (scenario.cold) evict_from_page_cache(evict);
      auto burst = measure_wake_burst(request(v));
      if (!burst) return Error{v.name + ": wake burst: " + burst.error().message};
      progress.update(scenario.name, v, run, runs, *result, *burst);
      v.runs.push_back(std::move(*result));
      v.bursts.push_back(std::move(*burst));
    }
  }
  progress.end_table();
  return ok_status();
}

}  // namespace

int run(const BenchConfig& config) {
  if (config.load_requests > 0) return run_load_test(config);
  std::vector<std::string> command = server_command(config);
  std::string app_dir = fs::current_path().string();
  if (config.command.empty() && !fs::exists("server.js")) {
    std::fprintf(stderr,
                 "knext-launch: --bench: no server.js in %s; run it in the standalone output "
                 "directory or give the server command after --\n",
                 app_dir.c_str());
    return 2;
  }
  if (!resolve_command(command.front())) {
    std::fprintf(stderr, "knext-launch: --bench: '%s' is not in PATH\n", command.front().c_str());
    return 2;
  }
  auto port = requested_port();
  if (!port) {
    std::fprintf(stderr, "knext-launch: --bench: %s\n", port.error().message.c_str());
    return 2;
  }

  ScratchDir cache;
  BenchInputs in{config, bench_warm_paths(config), *port, cache.path(), {}, false};
  // "node preload off" needs the default server command: it runs a copy of server.js.
  std::optional<PreloadOffServer> preload_off;
  bool want_preload_off = config.variants.empty() ||
                          std::find(config.variants.begin(), config.variants.end(), "nopreload") !=
                              config.variants.end();
  if (config.command.empty() && want_preload_off) {
    if (auto written = PreloadOffServer::write(app_dir); written) {
      preload_off.emplace(std::move(*written));
      in.preload_off = true;
    } else {
      std::fprintf(stderr, "no \"node preload off\" variant: %s\n",
                   written.error().message.c_str());
    }
  }
  // Baked once for the real directory; through the slow mount its paths are not the app's,
  // so there the launcher falls back to Next's traces, as it would for a moved image.
  auto manifest = BakedManifest::bake(
      app_dir, command, config.knext_warm_auto ? std::vector<std::string>{} : in.paths,
      cache.path() + "/seed");
  if (!manifest) {
    std::fprintf(stderr, "no page-cache manifest (%s): knext postwarm+fs uses Next's traces\n",
                 manifest.error().message.c_str());
  }
  auto unwarmed =
      pick_unwarmed_routes(app_dir, in.paths, {command, {}, {}, {}, {}, in.port, 60'000});
  if (unwarmed) {
    in.unwarmed = std::move(*unwarmed);
  } else {
    std::fprintf(stderr, "no unwarmed-route figures: %s\n", unwarmed.error().message.c_str());
  }
  std::vector<Scenario> scenarios;
  if (config.warm_page_cache) {
    scenarios.push_back({"warm", "warm page cache", false, 0, {}});
  }
  if (config.cold_page_cache) {
    scenarios.push_back({"cold",
                         "COLD page cache (app files, node and the compile caches evicted with "
                         "posix_fadvise(DONTNEED) before each run)",
                         true,
                         0,
                         {}});
  }
  auto slow_us = std::chrono::duration_cast<std::chrono::microseconds>(config.slow_storage);
  if (slow_us.count() > 0) {
    scenarios.push_back({"slow",
                         fmt::format("SLOW storage (app and node read through a FUSE mount adding "
                                     "{} ms to every read; cold: evicted before each run)",
                                     config.slow_storage.count()),
                         true,
                         slow_us.count(),
                         {}});
  }
  size_t variant_count = make_variants(variant_inputs(in, command)).size();
  Progress progress(scenarios.size() * variant_count * static_cast<size_t>(config.runs));

  std::vector<Scenario> done;
  for (auto& scenario : scenarios) {
    Placement placement{app_dir, command};
    std::optional<SlowStorage> slow;
    if (scenario.slow_read_delay_us > 0) {
      auto program = resolved(command.front());
      auto mounted = SlowStorage::mount({std::chrono::microseconds(scenario.slow_read_delay_us),
                                         {app_dir, program},
                                         {},
                                         {},
                                         std::chrono::seconds(5)});
      if (!mounted) {
        progress.note("slow storage: skipped: " + mounted.error().message);
        continue;
      }
      slow.emplace(std::move(*mounted));
      placement.app_dir = slow->map(app_dir);
      placement.command.front() = slow->map(program);
      for (size_t i = 1; i < placement.command.size(); ++i) {
        if (!placement.command[i].empty() && placement.command[i].front() == '/') {
          placement.command[i] = slow->map(placement.command[i]);
        }
      }
    }
    if (auto ran = run_scenario(scenario, in, placement, progress); !ran) {
      std::fprintf(stderr, "knext-launch: --bench: %s\n", ran.error().message.c_str());
      return 1;
    }
    print_table(scenario, in.paths, config.runs);
    done.push_back(std::move(scenario));
  }
  if (!config.json.empty()) {
    if (auto written = write_json(config.json, done, in.paths, config.runs); !written) {
      std::fprintf(stderr, "knext-launch: --bench: %s\n", written.error().message.c_str());
      return 1;
    }
    std::fprintf(stderr, "raw samples written to %s\n", config.json.c_str());
  }
  return 0;
}

}  // namespace knext::bench
