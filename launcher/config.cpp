#include "launcher/config.hpp"

#include <arpa/inet.h>

#include <array>
#include <filesystem>

#include "common/cli_flags.hpp"
#include "common/loopback.hpp"
#include "common/value_parsers.hpp"

namespace knext {
namespace {

using OptionSpec = FlagSpec<Config>;

bool set_mode(Config& c, std::string_view v, Mode mode) {
  auto b = parse_bool(v);
  if (!b) return false;
  if (*b) c.mode = mode;
  return true;
}

bool set_log_format(Config& c, std::string_view v) {
  static constexpr std::array<std::pair<std::string_view, LogFormat>, 2> kNames{{
      {"text", LogFormat::kText},
      {"json", LogFormat::kJson},
  }};
  return set_enum(c.log_format, v, kNames);
}

bool set_log_level(Config& c, std::string_view v) {
  static constexpr std::array<std::pair<std::string_view, LogLevel>, 6> kNames{{
      {"trace", LogLevel::kTrace},
      {"debug", LogLevel::kDebug},
      {"info", LogLevel::kInfo},
      {"warn", LogLevel::kWarn},
      {"error", LogLevel::kError},
      {"off", LogLevel::kOff},
  }};
  return set_enum(c.log_level, v, kNames);
}

bool set_compile_cache(Config& c, std::string_view v) {
  static constexpr std::array<std::pair<std::string_view, CompileCache>, 4> kNames{{
      {"auto", CompileCache::kAuto},
      {"node", CompileCache::kNode},
      {"postwarm", CompileCache::kPostwarm},
      {"off", CompileCache::kOff},
  }};
  return set_enum(c.compile_cache, v, kNames);
}

bool set_prewarm_fs(Config& c, std::string_view v) {
  static constexpr std::array<std::pair<std::string_view, bool>, 2> kNames{{
      {"auto", true},
      {"off", false},
  }};
  return set_enum(c.prewarm_fs, v, kNames);
}

bool set_next_preload(Config& c, std::string_view v) {
  static constexpr std::array<std::pair<std::string_view, bool>, 2> kNames{{
      {"defer", true},
      {"next", false},
  }};
  return set_enum(c.next_preload_defer, v, kNames);
}

bool set_learn_paths(Config& c, std::string_view v) {
  static constexpr std::array<std::pair<std::string_view, bool>, 2> kNames{{
      {"on", true},
      {"off", false},
  }};
  bool on = false;
  if (!set_enum(on, v, kNames)) return false;
  c.learn_paths = on;
  return true;
}

bool set_admin_host(Config& c, std::string_view v) {
  std::string host(v);
  unsigned char address[sizeof(in6_addr)];
  if (inet_pton(AF_INET, host.c_str(), address) != 1 &&
      inet_pton(AF_INET6, host.c_str(), address) != 1) {
    return false;
  }
  c.admin_host = std::move(host);
  return true;
}

bool set_cache_max_bytes(Config& c, std::string_view v) {
  auto bytes = parse_bytes(v);
  if (!bytes) return false;
  c.cache_max_bytes = *bytes;
  return true;
}

bool set_app_name(Config& c, std::string_view v) {
  if (v.empty() || v.size() > 128 || v == "." || v == "..") return false;
  for (unsigned char ch : v) {
    if (!std::isalnum(ch) && ch != '-' && ch != '_' && ch != '.') return false;
  }
  c.app_name = std::string(v);
  return true;
}

bool set_user(Config& c, std::string_view v) {
  auto who = resolve_user(v);
  if (!who) return false;
  c.user = std::move(*who);
  return true;
}

bool set_gate(Config& c, std::string_view v) {
  static constexpr std::array<std::pair<std::string_view, GateMode>, 4> kNames{{
      {"auto", GateMode::kAuto},
      {"handoff", GateMode::kHandoff},
      {"proxy", GateMode::kProxy},
      {"none", GateMode::kNone},
  }};
  return set_enum(c.gate, v, kNames);
}

bool set_warm_fail(Config& c, std::string_view v) {
  static constexpr std::array<std::pair<std::string_view, WarmFail>, 2> kNames{{
      {"open", WarmFail::kOpen},
      {"exit", WarmFail::kExit},
  }};
  return set_enum(c.warm_fail, v, kNames);
}

bool set_warm_gate(Config& c, std::string_view v) {
  static constexpr std::array<std::pair<std::string_view, WarmGate>, 2> kNames{{
      {"first", WarmGate::kFirst},
      {"all", WarmGate::kAll},
  }};
  return set_enum(c.warm_gate, v, kNames);
}

bool set_restart(Config& c, std::string_view v) {
  static constexpr std::array<std::pair<std::string_view, RestartMode>, 2> kNames{{
      {"never", RestartMode::kNever},
      {"on-failure", RestartMode::kOnFailure},
  }};
  return set_enum(c.restart, v, kNames);
}

bool add_warm_path(Config& c, std::string_view v) {
  if (v == "auto") {
    c.warm_auto = true;
    return true;
  }
  if (!is_url_path(v)) return false;
  c.warm_paths.emplace_back(v);
  return true;
}

bool add_warm_skip(Config& c, std::string_view v) {
  if (!is_url_path(v)) return false;
  c.warm_skip.emplace_back(v);
  return true;
}

bool set_ready_path(Config& c, std::string_view v) {
  if (!is_url_path(v)) return false;
  c.ready_path = std::string(v);
  return true;
}

const std::vector<OptionSpec>& specs() {
  static const std::vector<OptionSpec> kSpecs = {
      {"grace", "Shutdown grace: after SIGTERM/SIGINT, wait this long before SIGKILL (default 25s)",
       "a duration such as 25s, 500ms, 2m", false, set_duration<&Config::grace>},
      {"leftover-grace",
       "After the main child exits, how long its leftover processes get between SIGTERM and "
       "SIGKILL (default 2s)",
       "a duration such as 2s, 500ms", false, set_duration<&Config::leftover_grace>},
      {"signal-group", "Forward signals to the child's whole process group (default false)",
       "true or false", true, set_bool<&Config::signal_group>},
      {"log-format", "Log line format: text or json (default text)", "text or json", false,
       set_log_format},
      {"log-level", "Minimum log level: trace, debug, info, warn, error, off (default info)",
       "trace, debug, info, warn, error or off", false, set_log_level},
      {"bench",
       "Run the local cold-start comparison instead of supervising: execs knext-bench (beside "
       "this binary) with these arguments; its flags: knext-bench --help",
       "true or false", true,
       [](Config&, std::string_view v) { return parse_bool(v).has_value(); }},
      {"gate",
       "Hold readiness until warm: auto, handoff, proxy or none (default auto: handoff "
       "for node, none otherwise)",
       "auto, handoff, proxy or none", false, set_gate},
      {"warm-path",
       "Path to warm up (the first before the gate opens, the rest right after it; "
       "see --warm-gate); repeatable; auto: / and the paths --prewarm recorded, every other "
       "route of the build in the background (default auto for a Next.js standalone app, "
       "else /)",
       "auto or a URL path starting with / (no spaces)", false, add_warm_path, true,
       "KNEXT_WARM_PATHS"},
      {"warm-timeout", "How long warm-up may take before --warm-fail applies (default 60s)",
       "a duration above 0 such as 60s, 90s, 2m", false,
       set_positive_duration<&Config::warm_timeout>},
      {"warm-repeat",
       "Most requests per warm path; repeats stop earlier once latency converges or stops "
       "improving (default 8)",
       "a whole number from 1 to 64", false, set_int<&Config::warm_repeat, 1, 64>},
      {"warm-skip",
       "With --warm-path auto: a glob of routes never warmed ('*' within a segment, '**' "
       "across); repeatable",
       "a glob starting with / (no spaces), such as /admin/**", false, add_warm_skip, true},
      {"warm-background-budget",
       "How long warming after the gate opens may take (the critical paths after the first, "
       "and with --warm-path auto every other route); 0 turns it off (default 30s)",
       "a duration such as 30s, 2m; 0 turns it off", false,
       set_duration<&Config::warm_background_budget>},
      {"warm-gate",
       "Which critical warm paths hold the gate: first (the others are warmed right after it "
       "opens, while no user request is in flight) or all (default first; --warm-fail=exit, "
       "--gate=proxy and --warm-background-budget=0 hold all)",
       "first or all", false, set_warm_gate},
      {"learn-paths",
       "Count the paths users request (paths and counts only) into a record on --cache-dir, "
       "and warm the most requested routes first on the next start (default on with "
       "--cache-dir, else off)",
       "on or off", false, set_learn_paths},
      {"warm-fail", "When warm-up fails or times out: open the gate anyway, or exit (default open)",
       "open or exit", false, set_warm_fail},
      {"ready-path",
       "With --gate=proxy: path answered 503 until warm, 200 after (default "
       "/_knext/ready)",
       "a URL path starting with / (no spaces)", false, set_ready_path},
      {"admin-port", "Port for /healthz /readyz /metrics /startup; 0 turns it off (default 9901)",
       "a port number from 0 to 65535", false, set_int<&Config::admin_port, 0, 65535>},
      {"admin-host",
       "Address the admin endpoint listens on (default: every interface, IPv6 and IPv4)",
       "an IPv4 or IPv6 address such as 127.0.0.1, 0.0.0.0, ::1 or ::", false, set_admin_host},
      {"hook", "Path of knext-hook.cjs (default: found beside the binary)", "a file path", false,
       set_path<&Config::hook_path>},
      {"cache-dir",
       "Directory (a mounted volume) for compile caches, as <dir>/<app>/<build-id> (default: none)",
       "a directory path", false, set_path<&Config::cache_dir>},
      {"cache-seed", "Compile cache baked into the image by --prewarm; seeds an empty volume",
       "a directory path", false, set_path<&Config::cache_seed>},
      {"cache-max-bytes", "Cap for --cache-dir; older builds are evicted first (default 256MiB)",
       "a size such as 256MiB, 1GiB or a number of bytes", false, set_cache_max_bytes},
      {"app-name", "Name of the app's folder in --cache-dir (default: the app directory's name)",
       "letters, digits, '-', '_' and '.' (at most 128)", false, set_app_name},
      {"compile-cache", "V8 code cache: auto, node, postwarm or off (default auto)",
       "auto, node, postwarm or off", false, set_compile_cache},
      {"prewarm-fs", "Read the files the first render needs into the page cache: auto or off",
       "auto or off", false, set_prewarm_fs},
      {"next-preload",
       "Next.js's preloadEntriesOnStart (every route's modules loaded before the first request): "
       "defer it until the gate is open and no user request is in flight, or keep next's own "
       "timing (default defer)",
       "defer or next", false, set_next_preload},
      {"user", "Run the app (and the warm-up worker) as this user; caches are made theirs",
       "a user name from the passwd database, or UID or UID:GID", false, set_user},
      {"refuse-root", "Exit 2 instead of running the app as uid 0", "true or false", true,
       set_bool<&Config::refuse_root>},
      {"prewarm",
       "Image build step: start the app, warm it, write the compile cache to --cache-seed, stop",
       "true or false", true,
       [](Config& c, std::string_view v) { return set_mode(c, v, Mode::kPrewarm); }},
      {"restart",
       "Restart the app in place when it exits: never, or on-failure (non-zero exit or a signal) "
       "(default never)",
       "never or on-failure", false, set_restart},
      {"restart-max",
       "With --restart=on-failure: restarts allowed within --restart-window before the "
       "launcher exits with the app's status (default 5)",
       "a whole number from 1 to 1000", false, set_int<&Config::restart_max, 1, 1000>},
      {"restart-window",
       "With --restart=on-failure: the window --restart-max counts in (default 60s)",
       "a duration above 0 such as 60s, 10m", false,
       set_positive_duration<&Config::restart_window>},
  };
  return kSpecs;
}

constexpr CliProgram kProgram{
    "knext-launch",
    "PID 1 for Next.js standalone servers: supervises CMD (default `node server.js`) as a correct "
    "init.\n",
    "[-- CMD ARGS...]"};

}  // namespace

Expected<Config> parse_config(const std::vector<std::string>& args, const EnvLookup& env) {
  Config config;
  auto parsed = parse_flags(kProgram, specs(), config, args, env);
  if (!parsed) return parsed.error();
  if (parsed->help) {
    config.mode = Mode::kHelp;
    return config;
  }
  if (parsed->version) {
    config.mode = Mode::kVersion;
    return config;
  }
  config.command = std::move(parsed->positional);
  if (config.mode == Mode::kPrewarm && config.cache_seed.empty()) {
    return Error{"--prewarm needs --cache-seed DIR: where the image keeps the compile cache"};
  }
  if (config.admin_port != 0) {
    auto port = env("PORT");
    if (port && parse_port(*port) == config.admin_port) {
      return Error{"--admin-port " + std::to_string(config.admin_port) +
                   " is the app's PORT; use another port for the admin endpoint, or 0 to turn it "
                   "off"};
    }
  }
  if (auto checked = check_command(config.command); config.mode == Mode::kRun && !checked) {
    return checked.error();
  }
  return config;
}

std::string help_text() {
  return flags_help(kProgram, specs()) +
         "\nWith no CMD, runs `node server.js` in the working directory.\n"
         "Exit status: the child's, or 128+N if it died of signal N; 2 for bad options; 126/127 "
         "if CMD cannot be executed / is not found.\n";
}

std::vector<std::string> effective_command(const Config& config) {
  return command_or_default(config.command);
}

bool runs_node(const Config& config) {
  std::string program = effective_command(config).front();
  auto slash = program.rfind('/');
  std::string base = slash == std::string::npos ? program : program.substr(slash + 1);
  return base == "node" || base.rfind("node-", 0) == 0 || base.rfind("nodejs", 0) == 0;
}

GateMode effective_gate(const Config& config) {
  if (config.gate != GateMode::kAuto) return config.gate;
  return runs_node(config) ? GateMode::kHandoff : GateMode::kNone;
}

std::vector<std::string> effective_warm_paths(const Config& config) {
  if (!config.warm_paths.empty()) return config.warm_paths;
  return {"/"};
}

bool effective_learn_paths(const Config& config) {
  return config.learn_paths.value_or(!config.cache_dir.empty());
}

bool effective_warm_auto(const Config& config, const std::string& app_dir) {
  if (config.warm_auto) return true;
  if (!config.warm_paths.empty()) return false;
  std::error_code ec;
  return std::filesystem::is_regular_file(app_dir + "/server.js", ec) &&
         std::filesystem::is_regular_file(app_dir + "/.next/BUILD_ID", ec);
}

const char* gate_name(GateMode mode) {
  switch (mode) {
    case GateMode::kAuto:
      return "auto";
    case GateMode::kHandoff:
      return "handoff";
    case GateMode::kProxy:
      return "proxy";
    case GateMode::kNone:
      return "none";
  }
  return "none";
}

}  // namespace knext
