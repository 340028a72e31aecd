#include "bench/variants.hpp"

#include <filesystem>

#include "cachewarm/dir_ops.hpp"
#include "common/boost_process.hpp"
#include "common/spawn.hpp"

namespace knext::bench {
namespace {

Variant knext(const VariantInputs& in, const std::string& name, const std::string& mode,
              bool prewarm_fs) {
  std::vector<std::string> argv{in.launcher, "--log-level=warn", "--admin-port=0",
                                "--compile-cache=" + mode,
                                std::string("--prewarm-fs=") + (prewarm_fs ? "auto" : "off")};
  for (const auto& path : in.warm_paths) argv.push_back("--warm-path=" + path);
  Variant v{name, argv, {}, false, true, {}, {}, {}};
  if (mode != "off") {
    // Each cached variant gets its own folder on the volume so their caches never mix.
    std::string app = name;
    for (char& ch : app) {
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '-';
    }
    v.argv.push_back("--cache-dir=" + in.cache_root);
    v.argv.push_back("--app-name=" + app);
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
  return Variant{init + " + " + program, argv, {}, false, false, {}, {}, {}};
}

}  // namespace

std::vector<Variant> make_variants(const VariantInputs& in) {
  std::string program = std::filesystem::path(in.command.front()).filename().string();
  std::vector<Variant> all;
  all.push_back(Variant{"plain " + program, in.command, {}, false, false, {}, {}, {}});
  if (resolve_command("tini")) {
    // -s: tini is not PID 1 here; as a subreaper it still reaps like one.
    all.push_back(wrapped("tini", {"-s", "--"}, in.command));
  }
  if (resolve_command("dumb-init")) {
    all.push_back(wrapped("dumb-init", {}, in.command));
  }
  all.push_back(knext(in, "knext no cache", "off", false));
  all.push_back(knext(in, "knext node cache", "node", false));
  all.push_back(knext(in, "knext postwarm", "postwarm", false));
  all.push_back(knext(in, "knext postwarm+fs", "postwarm", true));
  return all;
}

long count_files(const std::string& dir) {
  constexpr int kDepth = 64;
  long n = 0;
  for_each_file(dir, kDepth, [&](const std::string&, const struct stat&) { ++n; });
  return n;
}

}  // namespace knext::bench
