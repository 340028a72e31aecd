// `knext-launch --bench` as a user runs it: the comparison on the fixture app, and bad input
// refused with one line and exit 2.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "common/fd.hpp"
#include "common/loopback.hpp"
#include "tests/integration/harness.hpp"

namespace fs = std::filesystem;
using namespace knext::test;

namespace {

const fs::path kRoot = KNEXT_SOURCE_ROOT;
const fs::path kApp = kRoot / "tests/fixtures/next-app/.next/standalone";

std::string node_path() {
  return (kRoot / ".deps/node/bin").string() + ":" + std::getenv("PATH");
}

LaunchOptions in_dir(const std::string& cwd) {
  LaunchOptions o;
  o.pid_namespace = false;
  o.cwd = cwd;
  o.env = {{"PATH", node_path()}};
  return o;
}

// A loopback port something listens on, for as long as this lives.
class BusyPort {
 public:
  BusyPort() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    auto addr = knext::loopback_address(0);
    socklen_t len = sizeof addr;
    if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
        listen(fd_.get(), 4) == 0 &&
        getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  int port() const { return port_; }

 private:
  knext::Fd fd_;
  int port_ = 0;
};

}  // namespace

TEST_CASE("--bench in a directory without server.js: one line naming it, exit 2") {
  TempDir empty;
  auto r = run_launcher({"--bench"}, in_dir(empty.path().string()), 10s);
  CHECK(r.exit_code == 2);
  CHECK(lines(r.err).size() == 1);
  CHECK(r.err.find("no server.js") != std::string::npos);
}

TEST_CASE("--bench with a command that is not installed: one line naming it, exit 2") {
  auto r = run_launcher({"--bench", "--", "no-such-node-knext"}, in_dir(kApp.string()), 10s);
  CHECK(r.exit_code == 2);
  CHECK(lines(r.err).size() == 1);
  CHECK(r.err.find("no-such-node-knext") != std::string::npos);
}

TEST_CASE("--bench with PORT set to a port in use: one line naming it, exit 2") {
  BusyPort busy;
  REQUIRE(busy.port() > 0);
  auto options = in_dir(kApp.string());
  options.env["PORT"] = std::to_string(busy.port());
  auto r = run_launcher({"--bench"}, options, 10s);
  CHECK(r.exit_code == 2);
  CHECK(lines(r.err).size() == 1);
  CHECK(r.err.find("port " + std::to_string(busy.port())) != std::string::npos);
}

// The whole comparison on the fixture app, small: every scenario and variant yields samples and
// the JSON holds every figure the table summarises. Timings are printed, never asserted.
TEST_CASE(
    "--bench --runs 2 on the fixture app: every variant yields samples, the JSON holds them") {
  TempDir out;
  auto json = (out.path() / "bench.json").string();
  auto r = run_launcher({"--bench", "--runs", "2", "--page-cache=both", "--slow-storage=1ms",
                         "--warm-path", "/", "--warm-path", "/dynamic", "--json", json},
                        in_dir(kApp.string()), 600s);
  MESSAGE(r.out);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  for (const char* table : {"warm page cache", "COLD page cache", "SLOW storage"}) {
    CHECK_MESSAGE(r.out.find(table) != std::string::npos, table);
  }
  for (const char* variant : {"plain node", "knext no cache", "knext node cache", "knext postwarm",
                              "knext postwarm+fs"}) {
    CHECK_MESSAGE(r.out.find(variant) != std::string::npos, variant);
  }
  // The header names every warm path, and the new tables are there.
  CHECK(r.out.find("every warm path (/ /dynamic)") != std::string::npos);
  CHECK(r.out.find("wake burst: 50 GETs") != std::string::npos);
  CHECK(r.out.find("routes not warmed") != std::string::npos);
  // node reads the JSON: every variant of every scenario has 2 samples with each figure.
  std::string check = R"(
    const j = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
    const bad = [];
    if (j.scenarios.length !== 3) bad.push('scenarios ' + j.scenarios.length);
    for (const s of j.scenarios) for (const v of s.variants) {
      const where = s.name + '/' + v.name;
      if (v.samples.length !== 2) bad.push(where + ' samples ' + v.samples.length);
      for (const x of v.samples) {
        if (!(x.ready_ms > 0)) bad.push(where + ' ready_ms');
        if (x.paths.length !== 2) bad.push(where + ' paths');
        for (const p of x.paths) {
          if (!(p.first_ms >= x.ready_ms) || !(p.steady_ms > 0) || p.status !== 200)
            bad.push(where + ' ' + p.path + ' ' + JSON.stringify(p));
        }
        if (v.launcher && !(x.peak_rss_kb > 0)) bad.push(where + ' peak_rss_kb');
        if (v.name.includes('node cache') || v.name.includes('postwarm'))
          if (!(x.cache_entries > 0)) bad.push(where + ' cache_entries');
        // The wake burst: 50 held requests, all answered, completions ordered and after spawn.
        const b = x.wake_burst;
        if (!b || b.requests !== 50 || b.ok !== 50 || !(b.p50_ms > 0) || !(b.p50_ms <= b.p99_ms)
            || !(b.p99_ms <= b.max_ms))
          bad.push(where + ' wake_burst ' + JSON.stringify(b));
        // Routes nobody warmed: the fixture has some of each kind, none of them a warm path.
        if (x.unwarmed.length < 3) bad.push(where + ' unwarmed ' + x.unwarmed.length);
        for (const u of x.unwarmed) {
          if (u.path === '/' || u.path === '/dynamic' || u.status !== 200 || !(u.first_ms > 0)
              || !(u.steady_ms > 0)
              || !(Math.abs(u.ratio * u.steady_ms - u.first_ms) <= 0.01 * u.first_ms + 0.01))
            bad.push(where + ' unwarmed ' + JSON.stringify(u));
        }
      }
      if (!(v.summary.wake_burst.p99_ms.median > 0) || !(v.summary.wake_burst.p99_vs_plain > 0))
        bad.push(where + ' summary wake_burst');
      if (Object.keys(v.summary.unwarmed).length < 3) bad.push(where + ' summary unwarmed');
      for (const f of ['median', 'p90', 'min'])
        if (!(v.summary.paths['/'].first_ms[f] > 0)) bad.push(where + ' summary ' + f);
      if (!(v.summary.first_vs_plain > 0)) bad.push(where + ' first_vs_plain');
    }
    console.log(bad.length ? 'BAD ' + bad.join('; ') : 'json ok');
  )";
  auto node = run_launcher(
      {"--gate=none", "--admin-port=0", "--compile-cache=off", "--", "node", "-e", check, json},
      in_dir(out.path().string()), 30s);
  CHECK_MESSAGE(node.out.find("json ok") != std::string::npos, node.out << node.err);
}

// knext-launch hands `--bench ...` to knext-bench unchanged: its help, its flag errors.
TEST_CASE("--bench goes through knext-bench: its --help, and a bad bench flag named by it") {
  auto help = run_launcher({"--bench", "--help"}, in_dir(kApp.string()), 10s);
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("knext-bench [options]") != std::string::npos);
  for (const char* flag : {"--runs", "--page-cache", "--slow-storage", "--load", "KNEXT_RUNS"}) {
    CHECK_MESSAGE(help.out.find(flag) != std::string::npos, flag);
  }

  auto bad = run_launcher({"--bench", "--runs", "0"}, in_dir(kApp.string()), 10s);
  CHECK(bad.exit_code == 2);
  REQUIRE(lines(bad.err).size() == 1);
  CHECK(bad.err.find("knext-bench: --runs: '0' is not allowed") == 0);

  auto from_env = run_launcher({}, [] {
    auto o = in_dir(kApp.string());
    o.env["KNEXT_BENCH"] = "true";
    o.env["KNEXT_PAGE_CACHE"] = "tepid";
    return o;
  }());
  CHECK(from_env.exit_code == 2);
  CHECK(from_env.err.find("knext-bench: KNEXT_PAGE_CACHE (for --page-cache)") == 0);
}

// An install of knext-launch alone (the base image ships no bench): one line, exit 2.
TEST_CASE("--bench without knext-bench beside the launcher: one line naming it, exit 2") {
  TempDir alone;
  auto o = in_dir(alone.path().string());
  o.wrapper = {"sh", "-c", R"(cp "$0" ./knext-launch && exec ./knext-launch "$@")"};
  auto r = run_launcher({"--bench", "--runs", "2"}, o, 10s);
  CHECK(r.exit_code == 2);
  REQUIRE(lines(r.err).size() == 1);
  CHECK(r.err.find("knext-launch: --bench runs knext-bench") == 0);
  CHECK(r.err.find(alone.path().string() + "/knext-bench") != std::string::npos);
}

namespace {

// Processes whose working directory is under `dir` (a server the bench left running).
std::vector<std::string> processes_in(const fs::path& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    auto cwd = fs::read_symlink(entry.path() / "cwd", ec);
    if (ec || cwd.string().rfind(dir.string(), 0) != 0) continue;
    std::string cmdline = read_file(entry.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    found.push_back(entry.path().filename().string() + " " + cmdline);
  }
  return found;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

// The bench bakes a manifest and a warm-up record into the app it measures (when the app has
// none) and removes them at the end. Stopped by a signal it removes them too, with the servers
// it started; killed outright it leaves a marker, and the next bench removes that bake before
// its own, so a stale record never steers later runs. On a copy of the fixture app.
TEST_CASE(
    "--bench stopped by SIGTERM leaves nothing in the app; a killed bench's bake is removed") {
  TempDir tmp;
  auto app = tmp.path() / "app";
  fs::copy(kApp, app, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  auto next = app / ".next";
  const std::vector<std::string> baked = {"knext-prewarm-manifest.txt", "knext-prewarm-pages.txt",
                                          "knext-warm-record.json", "knext-bench-baked"};
  for (const auto& name : baked) fs::remove(next / name);
  // What a SIGKILLed bench leaves: its marker and a record for a path nobody asked for.
  write_file(next / "knext-bench-baked", "");
  write_file(next / "knext-warm-record.json",
             R"({"knext_warm_record":1,"build_id":"stale","paths":[],"routes":[]})");

  Launched bench({"--bench", "--runs", "1", "--page-cache=warm", "--warm-path", "/"},
                 in_dir(app.string()));
  CHECK(bench.wait_for_err("removing what a killed bench baked", 30s));
  // The bake is done once the manifest is there; the runs follow.
  REQUIRE_MESSAGE(eventually([&] { return fs::exists(next / "knext-prewarm-manifest.txt"); }, 120s),
                  bench.err());
  CHECK(read_file(next / "knext-warm-record.json").find("\"stale\"") == std::string::npos);
  CHECK(eventually([&] { return bench.err().find("warm run 1/1") != std::string::npos; }, 60s));
  bench.send(SIGTERM);
  auto r = bench.wait(30s);
  CHECK(r.exit_code == 128 + SIGTERM);
  for (const auto& name : baked) CHECK_MESSAGE(!fs::exists(next / name), name);
  bool none_left = eventually([&] { return processes_in(app).empty(); }, 5s);
  std::string left;
  for (const auto& p : processes_in(app)) left += p + "\n";
  CHECK_MESSAGE(none_left, "left running:\n" << left);
}
