// The launch plan's decisions, on real files: the app directory, the PATH directories, the hook
// and the BUILD_ID are scratch directories on disk. Only the free loopback port is given by the
// test (a real one is taken at random and its failure cannot be caused here).
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <map>

#include "common/spawn.hpp"
#include "launcher/launch_plan.hpp"
#include "tests/unit/scratch_dir.hpp"

using knext::GateMode;
using knext::LaunchInputs;
using knext::LaunchPlan;
using knext::test::ScratchDir;

namespace {

void write_file(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
}

knext::Config config_of(std::vector<std::string> args) {
  auto c = knext::parse_config(args, [](const std::string&) { return std::nullopt; });
  REQUIRE(c.ok());
  return *c;
}

// An app directory with a hook file and a bin/ holding an executable `node`.
struct Scene {
  ScratchDir dir{"knext-plan"};
  LaunchInputs in;
  Scene() {
    write_file(dir / "bin/node", "#!/bin/sh\n", 0755);
    write_file(dir / "knext-hook.cjs", "");
    in.env = {"PATH=" + (dir / "bin"), "PORT=8080", "HOME=/root"};
    in.cwd = dir.path();
    in.uid = 1234;
    in.disk = knext::real_launch_disk();
    in.disk.free_loopback_port = [] { return knext::Expected<int>(40001); };
  }
  std::string hook_flag() const { return "--hook=" + (dir / "knext-hook.cjs"); }
  LaunchPlan plan(std::vector<std::string> args) const {
    auto p = knext::plan_launch(config_of(std::move(args)), in);
    REQUIRE(p.ok());
    return std::move(*p);
  }
};

std::map<std::string, std::string> as_map(
    const std::vector<std::pair<std::string, std::string>>& v) {
  return {v.begin(), v.end()};
}

}  // namespace

TEST_CASE("plan: the default command is node server.js, found once in the child's PATH") {
  Scene s;
  auto p = s.plan({s.hook_flag()});
  CHECK(p.argv == std::vector<std::string>{"node", "server.js"});
  REQUIRE(p.binary.ok());
  CHECK(*p.binary == s.dir / "bin/node");
  CHECK(p.app_dir == s.dir.path());
  CHECK(p.env == s.in.env);  // the gate's and the cache's variables are not in the base env
}

TEST_CASE("plan: a command not in PATH, or not executable, keeps the exec errno") {
  Scene s;
  auto missing = s.plan({"--", "no-such-program-knext"});
  REQUIRE_FALSE(missing.binary.ok());
  CHECK(missing.binary.error().code == ENOENT);

  write_file(s.dir / "bin/plain", "data", 0644);
  auto plain = s.plan({"--", "plain"});
  REQUIRE_FALSE(plain.binary.ok());
  CHECK(plain.binary.error().code == EACCES);

  auto absolute = s.plan({"--", "/bin/true"});
  REQUIRE(absolute.binary.ok());
  CHECK(*absolute.binary == "/bin/true");  // a path is exec'd as given, not searched
}

TEST_CASE("plan: gate auto is handoff for node, none for any other command") {
  Scene s;
  auto node = s.plan({s.hook_flag()});
  CHECK(node.gate == GateMode::kHandoff);
  CHECK(node.gate_note.empty());
  CHECK(node.public_port == 8080);
  CHECK(node.hook_path == s.dir / "knext-hook.cjs");

  auto versioned = s.plan({s.hook_flag(), "--", s.dir / "bin/node", "app.js"});
  CHECK(versioned.gate == GateMode::kHandoff);

  auto other = s.plan({"--", "sleep", "1"});
  CHECK(other.gate == GateMode::kNone);
  CHECK(other.gate_note.empty());  // nothing was asked for, so nothing was downgraded
  CHECK(other.public_port == 0);
  CHECK(other.gate_env.empty());
}

TEST_CASE("plan: handoff sets NODE_OPTIONS after the user's and KNEXT_GATE") {
  Scene s;
  s.in.env.push_back("NODE_OPTIONS=--max-old-space-size=256");
  auto p = s.plan({s.hook_flag()});
  auto env = as_map(p.gate_env);
  CHECK(env["NODE_OPTIONS"] ==
        "--max-old-space-size=256 --require \"" + (s.dir / "knext-hook.cjs") + "\"");
  CHECK(env["KNEXT_GATE"] == "handoff");
  CHECK_FALSE(env.contains("KNEXT_CONTROL_FD"));  // the channel's fd exists only at the spawn
  CHECK(env["KNEXT_NEXT_PRELOAD"] == "defer");
  CHECK(as_map(s.plan({s.hook_flag(), "--next-preload=next"}).gate_env)["KNEXT_NEXT_PRELOAD"] ==
        "next");
}

TEST_CASE("plan: a missing hook turns the gate off and says why") {
  Scene s;
  auto p = s.plan({"--hook=" + (s.dir / "missing.cjs")});
  CHECK(p.gate == GateMode::kNone);
  CHECK(p.gate_note.find("missing.cjs' does not exist") != std::string::npos);
  CHECK(p.gate_note.find("the app starts ungated") != std::string::npos);
  CHECK(p.gate_env.empty());
  CHECK(p.public_port == 0);
}

TEST_CASE("plan: proxy listens on PORT and moves node to a loopback port") {
  Scene s;
  auto p = s.plan({"--gate=proxy"});
  CHECK(p.gate == GateMode::kProxy);
  CHECK(p.public_port == 8080);
  CHECK(p.internal_port == 40001);
  auto env = as_map(p.gate_env);
  CHECK(env["PORT"] == "40001");
  CHECK(env["HOSTNAME"] == "127.0.0.1");
  CHECK(knext::get_env(p.env, "PORT") == "8080");  // the ungated env keeps the public port
}

TEST_CASE("plan: proxy downgrades to none without PORT or without a free loopback port") {
  Scene s;
  s.in.env = {"PATH=" + (s.dir / "bin")};
  auto no_port = s.plan({"--gate=proxy"});
  CHECK(no_port.gate == GateMode::kNone);
  CHECK(no_port.gate_note ==
        "PORT is not set, so there is no public port to hold back: gate proxy is off");
  CHECK(no_port.gate_env.empty());

  Scene t;
  t.in.disk.free_loopback_port = [] {
    return knext::Expected<int>(knext::Error{"no free loopback port: Address already in use"});
  };
  auto no_internal = t.plan({"--gate=proxy"});
  CHECK(no_internal.gate == GateMode::kNone);
  CHECK(no_internal.gate_note ==
        "no free loopback port: Address already in use; the proxy gate is off, the app starts "
        "ungated");
  CHECK(no_internal.internal_port == 0);
  CHECK(no_internal.public_port == 0);
}

TEST_CASE("plan: handoff without PORT is off with the same reason") {
  Scene s;
  s.in.env = {"PATH=" + (s.dir / "bin")};
  auto p = s.plan({s.hook_flag()});
  CHECK(p.gate == GateMode::kNone);
  CHECK(p.gate_note ==
        "PORT is not set, so there is no public port to hold back: gate handoff is off");
}

TEST_CASE("plan: a bad PORT is an error when a gate needs it, ignored when none does") {
  Scene s;
  for (std::string bad : {"abc", "0", "65536", "80x", ""}) {
    s.in.env = {"PATH=" + (s.dir / "bin"), "PORT=" + bad};
    auto p = knext::plan_launch(config_of({s.hook_flag()}), s.in);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().message ==
          "PORT: '" + bad + "' is not allowed; use a port number from 1 to 65535");
  }
  s.in.env = {"PATH=" + (s.dir / "bin"), "PORT=abc"};
  CHECK(knext::plan_launch(config_of({"--gate=none"}), s.in).ok());
}

TEST_CASE("plan: warm paths explicit, default, and auto in a standalone build") {
  Scene s;
  auto plain = s.plan({s.hook_flag()});
  CHECK(plain.warm.paths == std::vector<std::string>{"/"});
  CHECK_FALSE(plain.warm.explicit_paths);
  CHECK_FALSE(plain.warm.auto_discover);  // no server.js and BUILD_ID here

  write_file(s.dir / "server.js", "");
  write_file(s.dir / ".next/BUILD_ID", "abc123");
  auto standalone = s.plan({s.hook_flag()});
  CHECK(standalone.warm.auto_discover);
  CHECK(standalone.warm.paths.empty());  // the worker picks them from the build's manifests

  auto given = s.plan({s.hook_flag(), "--warm-path=/a", "--warm-path=/b"});
  CHECK(given.warm.paths == std::vector<std::string>{"/a", "/b"});
  CHECK(given.warm.explicit_paths);
  CHECK_FALSE(given.warm.auto_discover);  // explicit paths replace discovery

  Scene empty;
  auto asked = empty.plan({empty.hook_flag(), "--warm-path=auto"});
  CHECK(asked.warm.auto_discover);
  CHECK(asked.warm.worker_env == empty.in.env);
}

TEST_CASE("plan: the page-cache prewarm is for node, or when a gate was asked for") {
  Scene s;
  CHECK(s.plan({s.hook_flag()}).prewarm_fs);
  CHECK_FALSE(s.plan({"--", "sleep", "1"}).prewarm_fs);
  CHECK(s.plan({"--gate=proxy", "--", "sleep", "1"}).prewarm_fs);
  CHECK_FALSE(s.plan({s.hook_flag(), "--prewarm-fs=off"}).prewarm_fs);
}

TEST_CASE("plan: compile cache inputs") {
  Scene s;
  s.in.env.push_back("TMPDIR=relative/tmp");  // not absolute: ignored, as node would
  auto p = s.plan({s.hook_flag(), "--cache-dir=/vol", "--app-name=shop"});
  CHECK(p.cache.mode == knext::CompileCache::kPostwarm);  // auto
  CHECK_FALSE(p.cache.own_dir);
  CHECK(p.cache.options.cache_dir == "/vol");
  CHECK(p.cache.options.app_dir == s.dir.path());
  CHECK(p.cache.options.app_name == "shop");
  CHECK(p.cache.options.app_uid == 1234);  // the launcher's uid without --user
  CHECK(p.cache.options.tmp_dir == "/tmp");

  CHECK(s.plan({s.hook_flag(), "--compile-cache=node"}).cache.mode == knext::CompileCache::kNode);
  CHECK(s.plan({s.hook_flag(), "--compile-cache=off"}).cache.mode == knext::CompileCache::kOff);

  s.in.env.push_back("NODE_COMPILE_CACHE=/mine");
  knext::set_env(s.in.env, "TMPDIR", "/var/tmp");
  auto own = s.plan({s.hook_flag(), "--user=65534"});
  CHECK(own.cache.own_dir == "/mine");
  CHECK(own.cache.options.app_uid == 65534);
  CHECK(own.cache.options.tmp_dir == "/var/tmp");
}

TEST_CASE("plan: --prewarm bakes with the manifest variables, checks without them") {
  Scene s;
  write_file(s.dir / ".next/BUILD_ID", "build-7");
  s.in.env = {"PATH=" + (s.dir / "bin")};  // the build step has no PORT
  auto p = knext::plan_prewarm(
      config_of({s.hook_flag(), "--prewarm", "--cache-seed=" + (s.dir / "seed")}), s.in);
  REQUIRE(p.ok());
  for (const LaunchPlan* run : {&p->bake, &p->check}) {
    CHECK(run->gate == GateMode::kHandoff);
    CHECK(run->public_port == 40001);
    CHECK(knext::get_env(run->env, "PORT") == "40001");
    CHECK(knext::get_env(run->env, "HOSTNAME") == "127.0.0.1");
    CHECK(run->config.mode == knext::Mode::kRun);
    CHECK(run->config.admin_port == 0);
    CHECK(run->config.warm_bake);
    // The bake lets Next preload every route, so its compile cache holds them all.
    CHECK(as_map(run->gate_env)["KNEXT_NEXT_PRELOAD"] == "next");
    CHECK(run->cache.options.cache_dir == s.dir / "seed");
    CHECK(run->cache.options.cache_seed.empty());
  }
  CHECK(knext::get_env(p->bake.env, "KNEXT_MANIFEST_PATH") == p->manifest_path);
  CHECK(knext::get_env(p->bake.env, "KNEXT_BUILD_ID") == "build-7");
  CHECK_FALSE(knext::get_env(p->check.env, "KNEXT_MANIFEST_PATH"));
  CHECK_FALSE(knext::get_env(p->check.env, "KNEXT_BUILD_ID"));
  CHECK(p->manifest_path.starts_with(s.dir.path() + "/"));
  CHECK(p->mapped_pages_path.starts_with(s.dir.path() + "/"));
  CHECK(std::find(s.in.env.begin(), s.in.env.end(), "HOSTNAME=127.0.0.1") == s.in.env.end());

  s.in.env.push_back("PORT=3000");  // a PORT the build step has is kept
  auto kept = knext::plan_prewarm(
      config_of({s.hook_flag(), "--prewarm", "--cache-seed=" + (s.dir / "seed")}), s.in);
  REQUIRE(kept.ok());
  CHECK(kept->bake.public_port == 3000);

  auto off = knext::plan_prewarm(config_of({s.hook_flag(), "--prewarm", "--compile-cache=off",
                                            "--cache-seed=" + (s.dir / "seed")}),
                                 s.in);
  REQUIRE_FALSE(off.ok());
  CHECK(off.error().message == "--compile-cache=off leaves nothing to bake");
}
