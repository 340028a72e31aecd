#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/cli_flags.hpp"
#include "common/expected.hpp"
#include "common/log.hpp"
#include "common/run_as.hpp"

namespace knext {

// --bench is not a mode: main hands the whole command line to knext-bench before parsing it.
enum class Mode { kRun, kPrewarm, kHelp, kVersion };
// How readiness is held back until warm: through the node hook (no extra hop), by the launcher
// proxying PORT, or not at all. kAuto: handoff when the command is node, else none.
enum class GateMode { kAuto, kHandoff, kProxy, kNone };
enum class WarmFail { kOpen, kExit };
// Which critical paths hold the gate: the first (the rest are warmed right after it opens, while
// no user request is in flight), or every one.
enum class WarmGate { kFirst, kAll };
// Which V8 code cache node uses: its own NODE_COMPILE_CACHE, the post-warm cache written by the
// hook after the warm-up render (plus node's own for ESM), or none. kAuto: see README.
enum class CompileCache { kAuto, kNode, kPostwarm, kOff };
// Whether the launcher starts the app again in place when it exits.
enum class RestartMode { kNever, kOnFailure };

struct Config {
  Mode mode = Mode::kRun;
  // What to supervise; empty means the default `node server.js` in the working directory.
  std::vector<std::string> command;
  std::chrono::milliseconds grace{25'000};
  std::chrono::milliseconds leftover_grace{2'000};
  bool signal_group = false;
  LogFormat log_format = LogFormat::kText;
  LogLevel log_level = LogLevel::kInfo;

  GateMode gate = GateMode::kAuto;
  std::vector<std::string> warm_paths;  // empty means "/"
  std::chrono::milliseconds warm_timeout{60'000};
  int warm_repeat = 8;                 // requests per warm path at most (adaptive below that)
  bool warm_auto = false;              // --warm-path auto: discover the build's routes
  std::vector<std::string> warm_skip;  // --warm-skip globs
  std::chrono::milliseconds warm_background_budget{30'000};  // 0: no background warming
  bool warm_bake = false;  // --prewarm: warm every route before the flush, write the record
  WarmFail warm_fail = WarmFail::kOpen;
  WarmGate warm_gate = WarmGate::kFirst;
  std::optional<bool> learn_paths;  // --learn-paths; unset: on when cache_dir is set
  std::string ready_path = "/_knext/ready";
  int admin_port = 9901;  // 0: off
  // An IP literal; empty: every interface (:: dual-stack, else 0.0.0.0).
  std::string admin_host;
  std::string hook_path;  // empty: found next to the binary

  std::string cache_dir;   // the mounted volume for compile caches; empty: none
  std::string cache_seed;  // a cache baked into the image (--prewarm writes it)
  uint64_t cache_max_bytes = 256ull << 20;
  std::string app_name;  // empty: the app directory's name
  CompileCache compile_cache = CompileCache::kAuto;
  bool prewarm_fs = true;  // page-cache prewarm while node boots
  // --next-preload=defer: Next's preloadEntriesOnStart runs after the gate opens, in idle time
  bool next_preload_defer = true;

  std::optional<RunAs> user;  // --user: node and the warm-up worker run as this user
  bool refuse_root = false;   // --refuse-root: running the app as uid 0 is an error
  RestartMode restart = RestartMode::kNever;
  int restart_max = 5;  // restarts allowed within restart_window
  std::chrono::milliseconds restart_window{60'000};
};

// Flags win over KNEXT_<NAME> variables. Errors are one line naming the flag and what is allowed.
Expected<Config> parse_config(const std::vector<std::string>& args, const EnvLookup& env);
std::string help_text();

// The command actually run: the configured one, or `node server.js`.
std::vector<std::string> effective_command(const Config& config);
GateMode effective_gate(const Config& config);
bool runs_node(const Config& config);  // the command is node (by its program name)
std::vector<std::string> effective_warm_paths(const Config& config);
// --warm-path auto was given, or no --warm-path and app_dir holds a Next.js standalone build.
bool effective_warm_auto(const Config& config, const std::string& app_dir);
const char* gate_name(GateMode mode);
// --learn-paths, or its default: on when a cache volume (--cache-dir) is set.
bool effective_learn_paths(const Config& config);

}  // namespace knext
