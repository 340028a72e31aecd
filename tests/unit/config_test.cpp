#include <doctest/doctest.h>

#include <algorithm>

#include <map>

#include "launcher/config.hpp"

using knext::Config;
using knext::parse_config;

namespace {

knext::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

knext::Expected<Config> parse(std::vector<std::string> args,
                              std::map<std::string, std::string> env = {}) {
  return parse_config(args, env_of(std::move(env)));
}

}  // namespace

TEST_CASE("defaults: supervise node server.js, 25s grace, text logs") {
  auto c = parse({});
  REQUIRE(c.ok());
  CHECK(c->mode == knext::Mode::kRun);
  CHECK(c->grace == std::chrono::seconds(25));
  CHECK_FALSE(c->signal_group);
  CHECK(c->log_format == knext::LogFormat::kText);
  CHECK(knext::effective_command(*c) == std::vector<std::string>{"node", "server.js"});
}

TEST_CASE("the command after -- is kept verbatim, its own flags included") {
  auto c = parse({"--grace=3s", "--", "node", "--inspect", "server.js", "--grace=9s"});
  REQUIRE(c.ok());
  CHECK(c->grace == std::chrono::seconds(3));
  CHECK(c->command == std::vector<std::string>{"node", "--inspect", "server.js", "--grace=9s"});
}

TEST_CASE("a command without -- is taken from the positional arguments") {
  auto c = parse({"sleep", "1"});
  REQUIRE(c.ok());
  CHECK(c->command == std::vector<std::string>{"sleep", "1"});
}

TEST_CASE("every flag reads KNEXT_<NAME> and the flag wins") {
  auto from_env = parse({}, {{"KNEXT_GRACE", "500ms"},
                             {"KNEXT_SIGNAL_GROUP", "yes"},
                             {"KNEXT_LOG_FORMAT", "json"},
                             {"KNEXT_LOG_LEVEL", "debug"},
                             {"KNEXT_LEFTOVER_GRACE", "1s"}});
  REQUIRE(from_env.ok());
  CHECK(from_env->grace == std::chrono::milliseconds(500));
  CHECK(from_env->signal_group);
  CHECK(from_env->log_format == knext::LogFormat::kJson);
  CHECK(from_env->log_level == knext::LogLevel::kDebug);
  CHECK(from_env->leftover_grace == std::chrono::seconds(1));

  auto flag_wins = parse({"--grace", "7s", "--signal-group=false"},
                         {{"KNEXT_GRACE", "500ms"}, {"KNEXT_SIGNAL_GROUP", "1"}});
  REQUIRE(flag_wins.ok());
  CHECK(flag_wins->grace == std::chrono::seconds(7));
  CHECK_FALSE(flag_wins->signal_group);
}

TEST_CASE("a switch given alone is true") {
  auto c = parse({"--signal-group"});
  REQUIRE(c.ok());
  CHECK(c->signal_group);
}

TEST_CASE("bad values name the flag and what is allowed") {
  auto bad_grace = parse({"--grace=soon"});
  REQUIRE_FALSE(bad_grace.ok());
  CHECK(bad_grace.error().message.find("--grace") != std::string::npos);
  CHECK(bad_grace.error().message.find("'soon'") != std::string::npos);
  CHECK(bad_grace.error().message.find("duration") != std::string::npos);

  auto bad_env = parse({}, {{"KNEXT_LOG_FORMAT", "xml"}});
  REQUIRE_FALSE(bad_env.ok());
  CHECK(bad_env.error().message.find("KNEXT_LOG_FORMAT") != std::string::npos);
  CHECK(bad_env.error().message.find("text or json") != std::string::npos);

  auto bad_level = parse({"--log-level", "loud"});
  REQUIRE_FALSE(bad_level.ok());
  CHECK(bad_level.error().message.find("--log-level") != std::string::npos);

  auto bad_bool = parse({"--signal-group=maybe"});
  REQUIRE_FALSE(bad_bool.ok());
  CHECK(bad_bool.error().message.find("true or false") != std::string::npos);
}

TEST_CASE("an unknown flag is named, and a missing value says what is allowed") {
  auto unknown = parse({"--frobnicate"});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.find("'--frobnicate'") != std::string::npos);

  auto missing = parse({"--grace"});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("--grace needs a value") != std::string::npos);
}

TEST_CASE("error messages are one line") {
  for (auto args : std::vector<std::vector<std::string>>{
           {"--grace=x"}, {"--nope"}, {"--grace"}, {"--log-format=yaml"}, {"--", ""}}) {
    auto c = parse(args);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.find('\n') == std::string::npos);
    CHECK_FALSE(c.error().message.empty());
  }
}

TEST_CASE("help and version modes") {
  CHECK(parse({"--help"})->mode == knext::Mode::kHelp);
  CHECK(parse({"-h"})->mode == knext::Mode::kHelp);
  CHECK(parse({"--version"})->mode == knext::Mode::kVersion);
  auto help = knext::help_text();
  for (auto name : {"--grace", "--signal-group", "--log-format", "--log-level", "KNEXT_GRACE"}) {
    CHECK(help.find(name) != std::string::npos);
  }
}

TEST_CASE("gate: handoff for node, none for anything else, unless set") {
  CHECK(knext::effective_gate(*parse({})) == knext::GateMode::kHandoff);
  CHECK(knext::effective_gate(*parse({"--", "/usr/local/bin/node", "a.js"})) ==
        knext::GateMode::kHandoff);
  CHECK(knext::effective_gate(*parse({"--", "sleep", "1"})) == knext::GateMode::kNone);
  CHECK(knext::effective_gate(*parse({"--gate=proxy", "--", "sleep", "1"})) ==
        knext::GateMode::kProxy);
  CHECK(knext::effective_gate(*parse({"--gate=none"})) == knext::GateMode::kNone);
  auto bad = parse({"--gate=tcp"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("handoff, proxy or none") != std::string::npos);
}

TEST_CASE("warm paths: repeatable flag, comma-separated KNEXT_WARM_PATHS, default /") {
  CHECK(knext::effective_warm_paths(*parse({})) == std::vector<std::string>{"/"});
  auto flags = parse({"--warm-path", "/a", "--warm-path=/b?x=1"});
  REQUIRE(flags.ok());
  CHECK(flags->warm_paths == std::vector<std::string>{"/a", "/b?x=1"});
  auto env = parse({}, {{"KNEXT_WARM_PATHS", "/,/slow,/dynamic"}});
  REQUIRE(env.ok());
  CHECK(env->warm_paths == std::vector<std::string>{"/", "/slow", "/dynamic"});
  auto bad = parse({"--warm-path=slow"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("starting with /") != std::string::npos);
  auto bad_env = parse({}, {{"KNEXT_WARM_PATHS", "/ok,/has space"}});
  REQUIRE_FALSE(bad_env.ok());
  CHECK(bad_env.error().message.find("KNEXT_WARM_PATHS") != std::string::npos);
}

TEST_CASE("warm-up and admin settings validate") {
  auto c =
      parse({"--warm-timeout=5s", "--warm-fail=exit", "--admin-port=0", "--ready-path=/ready"});
  REQUIRE(c.ok());
  CHECK(c->warm_timeout == std::chrono::seconds(5));
  CHECK(c->warm_fail == knext::WarmFail::kExit);
  CHECK(c->admin_port == 0);
  CHECK(c->ready_path == "/ready");
  CHECK_FALSE(parse({"--admin-port=70000"}).ok());
  CHECK_FALSE(parse({"--warm-fail=retry"}).ok());
  CHECK_FALSE(parse({"--ready-path=ready"}).ok());
  CHECK(parse({})->warm_gate == knext::WarmGate::kFirst);
  CHECK(parse({"--warm-gate=all"})->warm_gate == knext::WarmGate::kAll);
  CHECK(parse({}, {{"KNEXT_WARM_GATE", "all"}})->warm_gate == knext::WarmGate::kAll);
  auto bad_gate = parse({"--warm-gate=some"});
  REQUIRE_FALSE(bad_gate.ok());
  CHECK(bad_gate.error().message.find("first or all") != std::string::npos);
}

TEST_CASE("--next-preload: defer by default, next, env, and a bad value named") {
  CHECK(parse({})->next_preload_defer);
  CHECK_FALSE(parse({"--next-preload=next"})->next_preload_defer);
  CHECK(parse({"--next-preload", "defer"})->next_preload_defer);
  CHECK_FALSE(parse({}, {{"KNEXT_NEXT_PRELOAD", "next"}})->next_preload_defer);
  auto bad = parse({"--next-preload=off"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("--next-preload") != std::string::npos);
  CHECK(bad.error().message.find("defer or next") != std::string::npos);
}

TEST_CASE("compile-cache settings: flags, env, validation") {
  auto c =
      parse({"--cache-dir=/cache", "--cache-seed", "/app/.knext-cache", "--cache-max-bytes=1GiB",
             "--compile-cache=postwarm", "--prewarm-fs=off", "--app-name=shop"});
  REQUIRE(c.ok());
  CHECK(c->cache_dir == "/cache");
  CHECK(c->cache_seed == "/app/.knext-cache");
  CHECK(c->cache_max_bytes == 1ull << 30);
  CHECK(c->compile_cache == knext::CompileCache::kPostwarm);
  CHECK_FALSE(c->prewarm_fs);
  CHECK(c->app_name == "shop");
  auto env = parse({}, {{"KNEXT_CACHE_DIR", "/pvc"}, {"KNEXT_COMPILE_CACHE", "node"}});
  REQUIRE(env.ok());
  CHECK(env->cache_dir == "/pvc");
  CHECK(env->compile_cache == knext::CompileCache::kNode);
  CHECK(parse({})->compile_cache == knext::CompileCache::kAuto);
  CHECK(parse({"--prewarm", "--cache-seed=/s"})->mode == knext::Mode::kPrewarm);
  CHECK(parse({"--prewarm"}).error().message.find("--cache-seed") != std::string::npos);
  for (auto bad : std::vector<std::string>{"--cache-max-bytes=lots", "--compile-cache=v8",
                                           "--app-name=../x", "--prewarm-fs=on"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse({bad}).ok());
  }
}

TEST_CASE("--user: a name from the passwd database, UID or UID:GID; --refuse-root") {
  auto root = parse({"--user=root"});
  REQUIRE(root.ok());
  REQUIRE(root->user.has_value());
  CHECK(root->user->uid == 0);
  CHECK(root->user->gid == 0);
  CHECK(root->user->name == "root");
  CHECK(std::find(root->user->groups.begin(), root->user->groups.end(), 0u) !=
        root->user->groups.end());
  auto ids = parse({}, {{"KNEXT_USER", "64001:64002"}});
  REQUIRE(ids.ok());
  CHECK(ids->user->uid == 64001u);
  CHECK(ids->user->gid == 64002u);
  CHECK(ids->user->groups == std::vector<gid_t>{64002u});
  CHECK_FALSE(parse({})->user.has_value());
  CHECK(parse({"--refuse-root"})->refuse_root);
  for (auto bad : std::vector<std::string>{"--user=no-such-user-here", "--user=1:", "--user=:1",
                                           "--user=1:x", "--user="}) {
    CAPTURE(bad);
    auto c = parse({bad});
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.find("--user") != std::string::npos);
    CHECK(c.error().message.find('\n') == std::string::npos);
  }
  CHECK_FALSE(knext::app_user_allowed(root->user, true, 0).ok());
  CHECK(knext::app_user_allowed(ids->user, true, 0).ok());
  CHECK_FALSE(knext::app_user_allowed(ids->user, false, 1000).ok());  // needs root to switch
  CHECK(knext::app_user_allowed(std::nullopt, false, 0).ok());        // warned about, not refused
}

TEST_CASE("--admin-port equal to PORT is refused, naming both") {
  auto same = parse({"--admin-port=8080"}, {{"PORT", "8080"}});
  REQUIRE_FALSE(same.ok());
  CHECK(same.error().message.find("--admin-port 8080 is the app's PORT") != std::string::npos);
  auto from_env = parse({}, {{"PORT", "9901"}});  // the default admin port
  CHECK_FALSE(from_env.ok());
  CHECK(parse({"--admin-port=0"}, {{"PORT", "9901"}}).ok());
  CHECK(parse({"--admin-port=9902"}, {{"PORT", "9901"}}).ok());
}

TEST_CASE("--warm-timeout and --restart-window must be above 0") {
  auto zero = parse({"--warm-timeout=0"});
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.error().message.find("above 0") != std::string::npos);
  CHECK_FALSE(parse({"--warm-timeout=0ms"}).ok());
  CHECK_FALSE(parse({"--restart-window=0"}).ok());
  CHECK(parse({"--warm-timeout=1ms"}).ok());
}

TEST_CASE("a newline or control byte in a value is escaped: the error stays one line") {
  auto nl = parse({"--grace=5\nsecond line"});
  REQUIRE_FALSE(nl.ok());
  CHECK(nl.error().message.find('\n') == std::string::npos);
  CHECK(nl.error().message.find("5\\nsecond line") != std::string::npos);
  auto separate = parse({"--warm-path", "/a\nb"});  // a value given as its own argument
  REQUIRE_FALSE(separate.ok());
  CHECK(separate.error().message.find("'/a\\nb' is not allowed") != std::string::npos);
  auto env = parse({}, {{"KNEXT_LOG_FORMAT", "te\x1bxt\r"}});
  REQUIRE_FALSE(env.ok());
  CHECK(env.error().message.find("'te\\x1bxt\\x0d'") != std::string::npos);
}

TEST_CASE("restart policy flags: defaults, values, validation") {
  auto defaults = parse({});
  REQUIRE(defaults.ok());
  CHECK(defaults->restart == knext::RestartMode::kNever);
  CHECK(defaults->restart_max == 5);
  CHECK(defaults->restart_window == std::chrono::seconds(60));
  auto set = parse({"--restart=on-failure", "--restart-max=3"}, {{"KNEXT_RESTART_WINDOW", "2m"}});
  REQUIRE(set.ok());
  CHECK(set->restart == knext::RestartMode::kOnFailure);
  CHECK(set->restart_max == 3);
  CHECK(set->restart_window == std::chrono::minutes(2));
  auto bad = parse({"--restart=always"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("never or on-failure") != std::string::npos);
  CHECK_FALSE(parse({"--restart-max=0"}).ok());
}

TEST_CASE("--warm-path auto, --warm-skip, --warm-background-budget") {
  auto autos = parse({"--warm-path", "auto", "--warm-path", "/slow"});
  REQUIRE(autos.ok());
  CHECK(autos->warm_auto);
  CHECK(autos->warm_paths == std::vector<std::string>{"/slow"});
  auto env =
      parse({}, {{"KNEXT_WARM_SKIP", "/admin/**,/api/*"}, {"KNEXT_WARM_BACKGROUND_BUDGET", "0"}});
  REQUIRE(env.ok());
  CHECK(env->warm_skip == std::vector<std::string>{"/admin/**", "/api/*"});
  CHECK(env->warm_background_budget.count() == 0);
  CHECK(parse({})->warm_background_budget.count() > 0);
  auto bad_skip = parse({"--warm-skip", "admin"});
  REQUIRE_FALSE(bad_skip.ok());
  CHECK(bad_skip.error().message.find("--warm-skip: 'admin' is not allowed") != std::string::npos);
  auto bad_budget = parse({"--warm-background-budget", "soon"});
  REQUIRE_FALSE(bad_budget.ok());
  CHECK(bad_budget.error().message.find("--warm-background-budget") != std::string::npos);
  // Only a directory with server.js and .next/BUILD_ID is a Next.js standalone app.
  CHECK_FALSE(knext::effective_warm_auto(*parse({}), "/nonexistent-dir"));
  CHECK(knext::effective_warm_auto(*parse({"--warm-path=auto"}), "/nonexistent-dir"));
}

TEST_CASE("--admin-host takes an IPv4 or IPv6 address; the default is every interface") {
  CHECK(parse({})->admin_host.empty());
  CHECK(parse({"--admin-host=127.0.0.1"})->admin_host == "127.0.0.1");
  CHECK(parse({"--admin-host", "::"})->admin_host == "::");
  CHECK(parse({}, {{"KNEXT_ADMIN_HOST", "::1"}})->admin_host == "::1");
  for (std::string bad : {"localhost", "10.0.0.256", "[::1]", ""}) {
    CAPTURE(bad);
    auto r = parse({"--admin-host=" + bad});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("--admin-host") != std::string::npos);
    CHECK(r.error().message.find("an IPv4 or IPv6 address") != std::string::npos);
  }
}

TEST_CASE("--learn-paths: on with --cache-dir by default, else off; on/off and env") {
  REQUIRE_FALSE(parse({})->learn_paths.has_value());
  CHECK_FALSE(knext::effective_learn_paths(*parse({})));
  CHECK(knext::effective_learn_paths(*parse({"--cache-dir", "/cache"})));
  CHECK_FALSE(knext::effective_learn_paths(*parse({"--cache-dir", "/cache", "--learn-paths=off"})));
  CHECK(knext::effective_learn_paths(*parse({"--learn-paths", "on"})));
  CHECK_FALSE(knext::effective_learn_paths(
      *parse({"--cache-dir", "/cache"}, {{"KNEXT_LEARN_PATHS", "off"}})));
  auto bad = parse({"--learn-paths=yes"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("--learn-paths") != std::string::npos);
}
