#pragma once
#include <string>
#include <vector>

#include "bench/server_run.hpp"
#include "bench/wake_burst.hpp"

namespace knext::bench {

struct Variant {
  std::string key;  // what --variant names it by
  std::string name;
  std::vector<std::string> argv;
  std::string cache_dir;       // its compile-cache volume (entries are counted), or empty
  bool needs_priming = false;  // run once unmeasured first: fills its compile cache
  bool is_launcher = false;    // the RSS figure is knext-launch's own
  std::vector<ServerRunResult> runs;
  std::vector<long> cache_entries;  // files in cache_dir after each run
  std::vector<WakeBurst> bursts;    // one wake burst per run, each from its own start
};

// What runs the server in each variant: the command (node server.js), and tini and dumb-init
// in front of it when they are installed.
struct VariantInputs {
  std::vector<std::string> command;
  std::string launcher;  // knext-launch (beside knext-bench)
  std::string cache_root;
  std::vector<std::string> warm_paths;
  std::vector<std::string> keys;                 // --variant: empty means the default set
  std::vector<std::string> preload_off_command;  // "nopreload"; empty when not applicable
};

// Every variant --variant can name, in table order, and the ones run by default.
const std::vector<std::string>& variant_keys();
const std::vector<std::string>& default_variant_keys();

// Plain node first (the baseline every ratio uses), then plain node with Next's preload
// switched off by hand, the other inits, knext-launch with each compile-cache mode and
// page-cache prewarm off, knext-launch as it ships, and the opt-in variants (as shipped but
// ungated, or with Next's own preload timing); only those `in.keys` names (plain always).
std::vector<Variant> make_variants(const VariantInputs& in);

// Regular files under `dir`, recursively (0 when it does not exist).
long count_files(const std::string& dir);

}  // namespace knext::bench
