#pragma once
// Every decision about one launch, made once before anything runs: what is exec'd, where, with
// which gate, ports, warm paths, cache inputs and environment. run_supervised and run_prewarm
// carry a plan out and decide nothing new.
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/expected.hpp"
#include "launcher/compile_cache_setup.hpp"
#include "launcher/config.hpp"

namespace knext {

// What the plan reads outside Config and the environment; real_launch_disk() asks the system.
struct LaunchDisk {
  // execvp's PATH search of `name` in `path` (the PATH value; none: the default PATH).
  std::function<Expected<std::string>(const std::string& name,
                                      const std::optional<std::string>& path)>
      find_command;
  std::function<Expected<std::string>(const std::string& configured)> find_hook;
  std::function<std::string(const std::string& app_dir)> read_build_id;
  std::function<Expected<int>()> free_loopback_port;
};
LaunchDisk real_launch_disk();

struct LaunchInputs {
  std::vector<std::string> env;  // the launcher's environment, "NAME=value"
  std::string cwd;               // the working directory: the app directory
  uid_t uid = 0;                 // the launcher's own uid (the app's when there is no --user)
  LaunchDisk disk;
};
LaunchInputs real_launch_inputs();

struct WarmUpPlan {
  // The critical paths the gate waits for: --warm-path, else "/"; empty with auto_discover
  // and no --warm-path, where the warm-up worker picks them from the build and reports them.
  std::vector<std::string> paths;
  // Also discover the build's routes: --warm-path auto, or no --warm-path in a Next.js
  // standalone build (server.js and .next/BUILD_ID in the app directory).
  bool auto_discover = false;
  bool explicit_paths = false;          // the paths came from --warm-path
  std::vector<std::string> worker_env;  // the warm-up worker's environment
};

struct LaunchPlan {
  Config config;  // as given, but for --prewarm the run it stands for
  std::vector<std::string> argv;
  // The file exec'd: argv[0] looked up in the child's PATH once; its errno when not found.
  Expected<std::string> binary = Error{"not looked up"};
  std::string app_dir;

  GateMode gate = GateMode::kNone;  // never kAuto
  std::string gate_note;            // why the gate was downgraded, logged once; empty: it was not
  std::string hook_path;            // handoff: the hook node requires
  int public_port = 0;              // PORT, when a gate holds it back; 0 otherwise
  int internal_port = 0;            // proxy: where node listens instead

  WarmUpPlan warm;
  bool prewarm_fs = false;  // page-cache prewarm of node's files while it boots
  CachePlan cache;

  // The child's environment without the gate's variables; `gate_env` is added to it when the
  // gate is really used (a gate that cannot start at run time leaves the app this env).
  std::vector<std::string> env;
  std::vector<std::pair<std::string, std::string>> gate_env;
};

// PORT from `env`: 1..65535, else a one-line error naming the value.
Expected<int> public_port_from_env(const std::vector<std::string>& env);

// Pure: the same Config and inputs give the same plan. An error is bad input (exit 2).
Expected<LaunchPlan> plan_launch(const Config& config, const LaunchInputs& in);

// --prewarm: the baking run (the hook records the manifest) and the check run after it.
struct PrewarmPlan {
  LaunchPlan bake;
  LaunchPlan check;
  std::string manifest_path;
  std::string mapped_pages_path;
};
Expected<PrewarmPlan> plan_prewarm(const Config& config, const LaunchInputs& in);

}  // namespace knext
