#include "launcher/launch_plan.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "cachewarm/build_id.hpp"
#include "cachewarm/page_cache/manifest.hpp"
#include "cachewarm/page_cache/mapped_pages_file.hpp"
#include "common/loopback.hpp"
#include "common/spawn.hpp"
#include "launcher/hook_injection.hpp"

namespace knext {
namespace {

CachePlan plan_cache(const Config& config, const LaunchInputs& in, const std::string& app_dir) {
  CachePlan cache;
  if (config.compile_cache == CompileCache::kOff) return cache;
  // auto = postwarm: on the fixture app it answered the first request sooner than node's cache
  // alone or none (README, "Compile cache").
  cache.mode =
      config.compile_cache == CompileCache::kNode ? CompileCache::kNode : CompileCache::kPostwarm;
  cache.own_dir = get_env(in.env, "NODE_COMPILE_CACHE");
  cache.options.cache_dir = config.cache_dir;
  cache.options.cache_seed = config.cache_seed;
  cache.options.app_dir = app_dir;
  cache.options.app_name = config.app_name;
  cache.options.max_bytes = config.cache_max_bytes;
  cache.options.app_uid = config.user ? config.user->uid : in.uid;
  auto tmp = get_env(in.env, "TMPDIR");
  cache.options.tmp_dir = tmp && tmp->starts_with('/') ? *tmp : "/tmp";
  return cache;
}

// The gate that can work here, its ports and variables; a gate that cannot degrades to none and
// says why in gate_note. Only a bad PORT is an error.
Status plan_gate(LaunchPlan& plan, const LaunchInputs& in) {
  plan.gate = effective_gate(plan.config);
  auto off = [&](const std::string& why) {
    plan.gate_note = why;
    plan.gate = GateMode::kNone;
    plan.public_port = 0;
    plan.gate_env.clear();
    return ok_status();
  };
  if (plan.gate == GateMode::kNone) return ok_status();
  if (!get_env(plan.env, "PORT")) {
    return off(
        fmt::format("PORT is not set, so there is no public port to hold back: gate {} is off",
                    gate_name(plan.gate)));
  }
  auto port = public_port_from_env(plan.env);
  if (!port) return port.error();
  plan.public_port = *port;
  if (plan.gate == GateMode::kHandoff) {
    auto hook = in.disk.find_hook(plan.config.hook_path);
    if (!hook) return off(hook.error().message + "; the gate is off, the app starts ungated");
    plan.hook_path = *hook;
    plan.gate_env = hook_env(plan.env, plan.hook_path);
    plan.gate_env.emplace_back("KNEXT_NEXT_PRELOAD",
                               plan.config.next_preload_defer ? "defer" : "next");
  } else if (plan.gate == GateMode::kProxy) {
    auto internal = in.disk.free_loopback_port();
    if (!internal) {
      return off(internal.error().message + "; the proxy gate is off, the app starts ungated");
    }
    plan.internal_port = *internal;
    plan.gate_env = {{"PORT", std::to_string(plan.internal_port)}, {"HOSTNAME", "127.0.0.1"}};
  }
  return ok_status();
}

}  // namespace

LaunchDisk real_launch_disk() {
  LaunchDisk disk;
  disk.find_command = [](const std::string& name, const std::optional<std::string>& path) {
    return resolve_command(name, path);
  };
  disk.find_hook = find_hook;
  disk.read_build_id = read_build_id;
  disk.free_loopback_port = free_loopback_port;
  return disk;
}

LaunchInputs real_launch_inputs() {
  LaunchInputs in;
  in.env = current_environment();
  std::error_code ec;
  in.cwd = std::filesystem::current_path(ec).string();
  in.uid = getuid();
  in.disk = real_launch_disk();
  return in;
}

Expected<int> public_port_from_env(const std::vector<std::string>& env) {
  auto text = get_env(env, "PORT");
  if (!text) return Error{"PORT is not set"};
  auto port = parse_port(*text);
  if (!port)
    return Error{"PORT: '" + *text + "' is not allowed; use a port number from 1 to 65535"};
  return *port;
}

Expected<LaunchPlan> plan_launch(const Config& config, const LaunchInputs& in) {
  LaunchPlan plan;
  plan.config = config;
  plan.argv = effective_command(config);
  plan.app_dir = in.cwd;
  plan.env = in.env;
  plan.binary = in.disk.find_command(plan.argv.front(), get_env(plan.env, "PATH"));
  if (auto gate = plan_gate(plan, in); !gate) return gate.error();
  plan.warm.explicit_paths = !config.warm_paths.empty();
  plan.warm.auto_discover = effective_warm_auto(config, plan.app_dir);
  // Without --warm-path the worker picks the critical paths from the build's manifests (read
  // while node boots, not here before the spawn) and reports them.
  if (plan.warm.explicit_paths || !plan.warm.auto_discover) {
    plan.warm.paths = effective_warm_paths(config);
  }
  plan.warm.worker_env = plan.env;
  // The prewarm's lists are node's files; as a plain init for anything else it would only cost
  // time.
  plan.prewarm_fs = config.prewarm_fs && (runs_node(config) || config.gate != GateMode::kAuto);
  plan.cache = plan_cache(config, in, plan.app_dir);
  return plan;
}

Expected<PrewarmPlan> plan_prewarm(const Config& config, const LaunchInputs& in) {
  if (config.compile_cache == CompileCache::kOff) {
    return Error{"--compile-cache=off leaves nothing to bake"};
  }
  Config run = config;
  run.mode = Mode::kRun;
  run.cache_dir = config.cache_seed;  // written like a volume, read later as the seed
  run.cache_seed.clear();
  run.gate = GateMode::kHandoff;
  run.warm_fail = WarmFail::kExit;
  run.admin_port = 0;
  run.warm_bake = true;            // every route before the flush; the warm-up record written
  run.next_preload_defer = false;  // Next loads every route, so the bake's cache holds them all
  run.learn_paths = false;         // the bake's requests are no one's traffic

  LaunchInputs check_in = in;
  // The build step usually has no PORT; any free loopback port will do for warming.
  if (!get_env(check_in.env, "PORT")) {
    auto port = in.disk.free_loopback_port();
    if (!port) return port.error();
    set_env(check_in.env, "PORT", std::to_string(*port));
  }
  set_env(check_in.env, "HOSTNAME", "127.0.0.1");

  PrewarmPlan out;
  out.manifest_path = manifest_path_for(in.cwd);
  out.mapped_pages_path = mapped_pages_path_for(in.cwd);
  // The hook of the baking run records the files node loaded up to the flush: the page-cache
  // prewarm's list.
  LaunchInputs bake_in = check_in;
  set_env(bake_in.env, "KNEXT_MANIFEST_PATH", out.manifest_path);
  set_env(bake_in.env, "KNEXT_BUILD_ID", in.disk.read_build_id(in.cwd));
  auto bake = plan_launch(run, bake_in);
  if (!bake) return bake.error();
  auto check = plan_launch(run, check_in);
  if (!check) return check.error();
  out.bake = std::move(*bake);
  out.check = std::move(*check);
  return out;
}

}  // namespace knext
