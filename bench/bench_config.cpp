#include "bench/bench_config.hpp"

#include <algorithm>
#include <array>
#include <string_view>

#include "bench/variants.hpp"
#include "common/self_exe.hpp"

namespace knext::bench {
namespace {

bool set_bench(BenchConfig&, std::string_view v) {
  return parse_bool(v).has_value();
}

bool set_page_cache(BenchConfig& c, std::string_view v) {
  if (v != "warm" && v != "cold" && v != "both") return false;
  c.warm_page_cache = v != "cold";
  c.cold_page_cache = v != "warm";
  return true;
}

bool set_gate(BenchConfig& c, std::string_view v) {
  if (v != "auto" && v != "handoff" && v != "proxy" && v != "none") return false;
  c.gate = v == "auto" ? std::string() : std::string(v);
  return true;
}

// auto leaves the list as it is: the launcher under test warms a standalone build's routes by
// default, and the comparison's variants pass their own paths.
bool add_warm_path(BenchConfig& c, std::string_view v) {
  if (v == "auto") return true;
  if (!is_url_path(v)) return false;
  c.warm_paths.emplace_back(v);
  return true;
}

bool set_knext_warm(BenchConfig& c, std::string_view v) {
  if (v != "paths" && v != "auto") return false;
  c.knext_warm_auto = v == "auto";
  return true;
}

bool add_variant(BenchConfig& c, std::string_view v) {
  const auto& keys = variant_keys();
  if (std::find(keys.begin(), keys.end(), v) == keys.end()) return false;
  if (std::find(c.variants.begin(), c.variants.end(), v) == c.variants.end()) {
    c.variants.emplace_back(v);
  }
  return true;
}

const std::vector<FlagSpec<BenchConfig>>& specs() {
  static const std::vector<FlagSpec<BenchConfig>> kSpecs = {
      {"bench", "Accepted as `knext-launch --bench` passes it (this program is the bench)",
       "true or false", true, set_bench},
      {"runs", "With --bench: runs per variant (default 5)", "a whole number from 1 to 1000", false,
       set_int<&BenchConfig::runs, 1, 1000>},
      {"page-cache",
       "With --bench: warm, cold (files evicted before each run) or both (default warm)",
       "warm, cold or both", false, set_page_cache},
      {"json", "With --bench: write every raw sample to this file as JSON", "a file path", false,
       set_path<&BenchConfig::json>},
      {"slow-storage",
       "With --bench: also run every variant from a FUSE mount adding this delay to each read "
       "(default off)",
       "a duration such as 2ms or 10ms; 0 turns it off", false,
       set_duration<&BenchConfig::slow_storage>},
      {"load",
       "With --bench: instead of the comparison, the scale-from-zero load test with this many "
       "requests",
       "a whole number from 1 to 10000000", false,
       set_int<&BenchConfig::load_requests, 1, 10'000'000>},
      {"concurrency", "With --bench --load: connections held open at once (default 100)",
       "a whole number from 1 to 10000", false, set_int<&BenchConfig::concurrency, 1, 10'000>},
      {"gate", "With --bench --load: the launcher's --gate (default: its own, auto)",
       "auto, handoff, proxy or none", false, set_gate},
      {"warm-path",
       "Path timed on every start (the first is the table's 'first'); repeatable (default /)",
       "auto or a URL path starting with / (no spaces)", false, add_warm_path, true,
       "KNEXT_WARM_PATHS"},
      {"knext-warm",
       "With --bench: what the knext variants warm before the gate: paths (the timed warm "
       "paths, as --warm-path) or auto (their default: no --warm-path, so a timed path is a "
       "user's first request) (default paths)",
       "paths or auto", false, set_knext_warm},
      {"variant",
       "With --bench: a variant to run, repeatable; plain node always runs first (default: "
       "plain nopreload tini dumb-init nocache nodecache postwarm shipped)",
       "plain, nopreload, tini, dumb-init, nocache, nodecache, postwarm, shipped, ungated or "
       "next-preload",
       false, add_variant, true, "KNEXT_VARIANTS"},
  };
  return kSpecs;
}

constexpr CliProgram kProgram{
    "knext-bench",
    "The cold-start comparison (and with --load the scale-from-zero load test) on the Next.js "
    "standalone app in the working directory; `knext-launch --bench ...` runs it.\n",
    "[-- CMD ARGS...]"};

}  // namespace

Expected<BenchConfig> parse_bench_config(const std::vector<std::string>& args,
                                         const EnvLookup& env) {
  BenchConfig config;
  auto parsed = parse_flags(kProgram, specs(), config, args, env);
  if (!parsed) return parsed.error();
  config.help = parsed->help;
  config.version = parsed->version;
  config.command = std::move(parsed->positional);
  if (auto checked = check_command(config.command); !checked) return checked.error();
  return config;
}

std::string bench_help_text() {
  return flags_help(kProgram, specs()) +
         "\nWith no CMD, times `node server.js` in the working directory; knext-launch (beside "
         "this binary) runs the knext variants.\n"
         "Exit status: 0 when every run succeeded; 1 when a run failed; 2 for bad options or "
         "input.\n";
}

std::vector<std::string> server_command(const BenchConfig& config) {
  return command_or_default(config.command);
}

std::vector<std::string> bench_warm_paths(const BenchConfig& config) {
  if (!config.warm_paths.empty()) return config.warm_paths;
  return {"/"};
}

std::string launcher_command() {
  return beside_self_command("knext-launch");
}

}  // namespace knext::bench
