#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "common/cli_flags.hpp"
#include "common/expected.hpp"

namespace knext::bench {

// knext-bench's command line: the same arguments `knext-launch --bench ...` was given.
struct BenchConfig {
  bool help = false;
  bool version = false;
  std::vector<std::string> command;  // the server; empty: `node server.js`
  int runs = 5;
  bool warm_page_cache = true;  // --page-cache=warm|cold|both
  bool cold_page_cache = false;
  std::string json;                           // --json FILE: every raw sample
  std::chrono::milliseconds slow_storage{0};  // per-read delay of the FUSE scenario; 0: off
  int load_requests = 0;                      // --load: the scale-from-zero load test
  int concurrency = 100;
  std::string gate;                     // --gate for the launcher under --load; empty: its default
  std::vector<std::string> warm_paths;  // empty: "/"
  std::vector<std::string> variants;    // --variant keys; empty: the default set
  bool knext_warm_auto = false;  // --knext-warm=auto: the knext variants warm by their default
};

// Flags win over KNEXT_<NAME> variables. Errors are one line naming the flag and what is allowed.
Expected<BenchConfig> parse_bench_config(const std::vector<std::string>& args,
                                         const EnvLookup& env);
std::string bench_help_text();

std::vector<std::string> server_command(const BenchConfig& config);
std::vector<std::string> bench_warm_paths(const BenchConfig& config);

// knext-launch beside this binary: what the knext variants, the bake and the load test run.
std::string launcher_command();

}  // namespace knext::bench
