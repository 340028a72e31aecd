#include "bench/variants.hpp"

#include <algorithm>
#include <filesystem>

#include "cachewarm/dir_ops.hpp"
#include "common/boost_process.hpp"
#include "common/spawn.hpp"

namespace knext::bench {
namespace {

Variant knext(const VariantInputs& in, const std::string& key, const std::string& name,
              const std::string& mode, bool prewarm_fs, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{in.launcher, "--log-level=warn", "--admin-port=0",
                                "--compile-cache=" + mode,
                                std::string("--prewarm-fs=") + (prewarm_fs ? "auto" : "off")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  for (const auto& path : in.warm_paths) argv.push_back("--warm-path=" + path);
  Variant v{key, name, argv, {}, false, true, {}, {}, {}};
  if (mode != "off") {
    // Each cached variant gets its own folder on the volume so their caches never mix.
    std::string app = name;
    for (char& ch : app) {
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '-';
    }
    v.argv.push_back("--cache-dir=" + in.cache_root);
    v.argv.push_back("--app-name=" + app);
    // Every run starts the same way: the bench's own GETs must not become the next run's plan.
    v.argv.push_back("--learn-paths=off");
    v.cache_dir = in.cache_root + "/" + app;
    v.needs_priming = true;
  }
  v.argv.push_back("--");
  v.argv.insert(v.argv.end(), in.command.begin(), in.command.end());
  return v;
}

Variant wrapped(const std::string& init, std::vector<std::string> init_args,
                const std::vector<std::string>& command) {
  std::vector<std::string> argv{init};
  argv.insert(argv.end(), init_args.begin(), init_args.end());
  argv.insert(argv.end(), command.begin(), command.end());
  std::string program = std::filesystem::path(command.front()).filename().string();
  return Variant{init, init + " + " + program, argv, {}, false, false, {}, {}, {}};
}

bool wanted(const VariantInputs& in, const std::string& key) {
  const auto& keys = in.keys.empty() ? default_variant_keys() : in.keys;
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

}  // namespace

const std::vector<std::string>& variant_keys() {
  static const std::vector<std::string> kKeys = {"plain",   "nopreload",   "tini",     "dumb-init",
                                                 "nocache", "nodecache",   "postwarm", "shipped",
                                                 "ungated", "next-preload"};
  return kKeys;
}

const std::vector<std::string>& default_variant_keys() {
  static const std::vector<std::string> kKeys = {"plain",   "nopreload", "tini",     "dumb-init",
                                                 "nocache", "nodecache", "postwarm", "shipped"};
  return kKeys;
}

std::vector<Variant> make_variants(const VariantInputs& in) {
  std::string program = std::filesystem::path(in.command.front()).filename().string();
  std::vector<Variant> all;
  all.push_back(Variant{"plain", "plain " + program, in.command, {}, false, false, {}, {}, {}});
  if (wanted(in, "nopreload") && !in.preload_off_command.empty()) {
    all.push_back(Variant{"nopreload",
                          program + " preload off",
                          in.preload_off_command,
                          {},
                          false,
                          false,
                          {},
                          {},
                          {}});
  }
  // -s: tini is not PID 1 here; as a subreaper it still reaps like one.
  if (wanted(in, "tini") && resolve_command("tini")) {
    all.push_back(wrapped("tini", {"-s", "--"}, in.command));
  }
  if (wanted(in, "dumb-init") && resolve_command("dumb-init")) {
    all.push_back(wrapped("dumb-init", {}, in.command));
  }
  if (wanted(in, "nocache")) all.push_back(knext(in, "nocache", "knext no cache", "off", false));
  if (wanted(in, "nodecache")) {
    all.push_back(knext(in, "nodecache", "knext node cache", "node", false));
  }
  if (wanted(in, "postwarm")) {
    all.push_back(knext(in, "postwarm", "knext postwarm", "postwarm", false));
  }
  if (wanted(in, "shipped")) {
    all.push_back(knext(in, "shipped", "knext postwarm+fs", "postwarm", true));
  }
  if (wanted(in, "ungated")) {
    all.push_back(knext(in, "ungated", "knext gate none", "postwarm", true, {"--gate=none"}));
  }
  if (wanted(in, "next-preload")) {
    all.push_back(
        knext(in, "next-preload", "knext next-preload", "postwarm", true, {"--next-preload=next"}));
  }
  return all;
}

long count_files(const std::string& dir) {
  constexpr int kDepth = 64;
  long n = 0;
  for_each_file(dir, kDepth, [&](const std::string&, const struct stat&) { ++n; });
  return n;
}

}  // namespace knext::bench
