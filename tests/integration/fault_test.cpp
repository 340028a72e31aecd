// Faults around the app process, driven for real: knext-launch as PID 1 of a fresh PID namespace
// (unshare --pid --fork --mount-proc) in front of real node servers (tests/fixtures/servers), a
// real tmpfs for the cache volume, a real FUSE mount (knext-slowfs) for a slow volume, libcurl
// and loopback sockets for the clients. Each test ends with the app serving or a clean, explained
// exit. scripts/test.sh runs this binary in its own network namespace.
#include <doctest/doctest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "bench/slow_storage.hpp"
#include "common/loopback.hpp"
#include "probes/http/curl_api.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/source_tree.hpp"

namespace fs = std::filesystem;
using namespace knext::test;
using Clock = std::chrono::steady_clock;

namespace {

std::string server(const std::string& name) {
  return (kRoot / "tests" / "fixtures" / "servers" / name).string();
}

int free_port() {
  auto port = knext::free_loopback_port();
  REQUIRE(port.ok());
  return *port;
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

int count_lines_with(const std::string& text, const std::string& needle) {
  int n = 0;
  for (const auto& line : lines(text)) n += contains(line, needle) ? 1 : 0;
  return n;
}

// status 0: no HTTP answer (the error is in body).
struct Answer {
  long status = 0;
  std::string body;
};
Answer get(int port, const std::string& path, long timeout_ms = 3000) {
  auto r = knext::http_get("http://127.0.0.1:" + std::to_string(port) + path, timeout_ms);
  if (!r) return {0, r.error().message};
  return {r->status, r->body};
}

// The launcher (PID 1 of its namespace) in front of `command`, with PORT and an admin port.
struct App {
  int port = free_port();
  int admin = free_port();
  std::unique_ptr<Launched> launched;

  App(std::vector<std::string> flags, std::vector<std::string> command,
      std::map<std::string, std::string> env = {}, std::string cwd = {}) {
    std::vector<std::string> args = {"--admin-port", std::to_string(admin)};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back("--");
    args.insert(args.end(), command.begin(), command.end());
    env["PORT"] = std::to_string(port);
    env.emplace("HOSTNAME", "127.0.0.1");
    launched = std::make_unique<Launched>(args, LaunchOptions{.env = env, .cwd = cwd});
  }
  std::string err() const { return launched->err(); }
  std::string report() const {
    return "---- stdout:\n" + launched->out() + "---- stderr:\n" + launched->err();
  }
  bool ready() { return get(admin, "/readyz", 1000).status == 200; }
  bool log_has(const std::string& needle, std::chrono::milliseconds timeout) {
    return launched->wait_for_err(needle, timeout);
  }
};

}  // namespace

// ---- finding 2: apps the gate cannot hold back
// ---------------------------------------------------

TEST_CASE("an app the hook cannot gate runs ungated: ready when PORT accepts, never stopped") {
  std::string script, reason, body;
  SUBCASE("a net.Server on PORT") {
    script = server("net-server.cjs");
    reason = "a net.Server that is not an http/https server listens on PORT";
    body = "net-server ok";
  }
  SUBCASE("a cluster app: the primary listens for its workers") {
    script = server("cluster-server.cjs");
    reason = "a cluster primary listens on PORT for its workers";
    body = "cluster worker";
  }
  CAPTURE(script);
  App app({"--warm-timeout", "2s"}, {node_bin(), script});
  REQUIRE_MESSAGE(app.log_has("running ungated", 10s), app.report());
  CHECK_MESSAGE(contains(app.err(), reason), app.report());
  REQUIRE_MESSAGE(eventually([&] { return app.ready(); }, 5s), app.report());
  CHECK(contains(app.err(), "phase gate-open"));
  // Past --warm-timeout: still running and serving, not stopped as a server that never listened.
  std::this_thread::sleep_for(2500ms);
  auto answer = get(app.port, "/");
  CHECK_MESSAGE(answer.status == 200, answer.body << "\n" << app.report());
  CHECK(contains(answer.body, body));
  CHECK(app.ready());
  CHECK(!contains(app.err(), "did not listen within"));
  CHECK(count_lines_with(app.err(), "running ungated") == 1);
  app.launched->send(SIGTERM);
  auto r = app.launched->wait(10s);
  CHECK_MESSAGE((r.exit_code == 0 || r.exit_code == 143), app.report());
}

// ---- finding 8: the app claims readiness on the control fd
// ---------------------------------------

TEST_CASE("a fake 'opened' from the app does not make /readyz ready before PORT accepts") {
  App app({"--warm-path", "/"}, {node_bin(), server("fault-server.cjs")},
          {{"FAULT_CONTROL", "opened"}, {"FAULT_LISTEN_AFTER_MS", "2000"}});
  REQUIRE_MESSAGE(app.launched->wait_for_output("control opened", 10s), app.report());
  REQUIRE_MESSAGE(app.log_has("does not accept connections yet", 5s), app.report());
  // The app listens only after 2 s: until then /readyz stays 503 and PORT refuses. A sample
  // counts only if the app still had not listened after it was taken, and there must be some:
  // an app that listened at once would show nothing here.
  int before_listen = 0;
  for (int i = 0; i < 10; ++i) {
    bool ready = app.ready();
    bool accepts = knext::loopback_accepts(app.port);
    if (contains(app.launched->out(), "fault-server listening")) break;
    CHECK_MESSAGE(!ready, app.report());
    CHECK(!accepts);
    ++before_listen;
    std::this_thread::sleep_for(100ms);
  }
  REQUIRE_MESSAGE(before_listen > 0, "the app listened before readiness could be checked\n"
                                         << app.report());
  REQUIRE_MESSAGE(eventually([&] { return app.ready(); }, 10s), app.report());
  CHECK(get(app.port, "/").status == 200);
  CHECK(contains(app.err(), "phase warm-path-done"));  // gated and warmed as usual after all
}

// ---- finding 4: a signal before the handlers exist
// -----------------------------------------------

TEST_CASE("SIGTERM while a slow volume holds the start up is not lost") {
  // A tiny app directory served through knext-slowfs, each first read 3 s late: the launcher
  // reads .next/BUILD_ID from it (for --cache-dir) before it could have any signal handler.
  TempDir src;
  fs::create_directories(src.path() / "app" / ".next");
  std::ofstream(src.path() / "app" / ".next" / "BUILD_ID") << "slow-build\n";
  knext::bench::SlowStorageOptions o;
  o.read_delay = 3s;
  o.paths = {(src.path() / "app").string()};
  o.slowfs_bin = (fs::path(launcher_bin()).parent_path() / "knext-slowfs").string();
  auto mount = knext::bench::SlowStorage::mount(o);
  REQUIRE_MESSAGE(mount.ok(), (mount.ok() ? "" : mount.error().message));
  TempDir volume;
  auto start = Clock::now();
  {
    App app({"--cache-dir", volume.path().string()}, {node_bin(), server("fault-server.cjs")}, {},
            mount->map((src.path() / "app").string()));
    REQUIRE(app.launched->launcher_pid() > 0);
    std::this_thread::sleep_for(500ms);  // inside the 3 s BUILD_ID read
    REQUIRE_MESSAGE(!contains(app.err(), "phase child-spawned"), app.report());
    app.launched->send(SIGTERM);
    auto r = app.launched->wait(15s);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    REQUIRE_MESSAGE(r.exit_code != -1, "no exit within 15 s: the SIGTERM was lost\n"
                                           << app.report());
    CHECK_MESSAGE(r.exit_code == 143, app.report());
    CHECK_MESSAGE(contains(r.err, "phase shutdown"), app.report());
    // No grace period spent: a lost TERM or a wait for the 25 s --grace fails the 15 s wait above,
    // and a kill at the grace would be exit 137, not 143.
    MESSAGE("SIGTERM during a 3 s BUILD_ID read: exit " << r.exit_code << " after " << ms
                                                        << " ms from the start");
  }
}

// ---- restart policy
// ------------------------------------------------------------------------------

TEST_CASE("node crashes mid-request") {
  SUBCASE("--restart=never: the launcher exits with the app's status") {
    App app({"--warm-path", "/"}, {node_bin(), server("fault-server.cjs")});
    REQUIRE_MESSAGE(eventually([&] { return app.ready(); }, 15s), app.report());
    auto crashed = get(app.port, "/crash");
    CHECK(crashed.status == 0);  // the connection dies with node
    auto r = app.launched->wait(10s);
    CHECK_MESSAGE(r.exit_code == 3, app.report());
    CHECK(contains(r.err, "phase child-exited"));
    CHECK(!contains(r.err, "restarting"));
  }
  SUBCASE("--restart=on-failure: PORT and /readyz close, the app is warmed again, then serves") {
    App app({"--restart", "on-failure", "--warm-path", "/work/1500"},
            {node_bin(), server("fault-server.cjs")});
    REQUIRE_MESSAGE(eventually([&] { return app.ready(); }, 15s), app.report());
    auto before = get(app.port, "/");
    REQUIRE(before.status == 200);
    auto crashed_at = Clock::now();
    CHECK(get(app.port, "/crash").status == 0);
    // Down, then held back for the 1.5 s re-warm: /readyz 503 and PORT refusing.
    CHECK_MESSAGE(eventually([&] { return !app.ready(); }, 2s), app.report());
    REQUIRE_MESSAGE(app.log_has("restarting in", 5s), app.report());
    REQUIRE_MESSAGE(app.log_has("(restart)", 5s), app.report());
    CHECK(!knext::loopback_accepts(app.port));
    CHECK(!app.ready());
    REQUIRE_MESSAGE(eventually([&] { return app.ready(); }, 15s), app.report());
    double back_ms = std::chrono::duration<double, std::milli>(Clock::now() - crashed_at).count();
    MESSAGE("crash to ready again (200 ms backoff, boot, 1.5 s warm path): " << back_ms << " ms");
    auto after = get(app.port, "/");
    CHECK(after.status == 200);
    CHECK(after.body != before.body);  // another pid: a new node process
    CHECK(contains(get(app.admin, "/metrics").body, "knext_restarts_total 1"));
    CHECK(contains(app.err(), "the app exited with 3; restarting in 200ms"));
    app.launched->send(SIGTERM);
    auto r = app.launched->wait(10s);
    CHECK_MESSAGE(r.exit_code == 143, app.report());
  }
}

TEST_CASE(
    "--gate=proxy --restart=on-failure: PORT stops accepting while node is down, then serves") {
  App app({"--gate", "proxy", "--restart", "on-failure", "--warm-path", "/work/1000"},
          {node_bin(), server("fault-server.cjs")});
  REQUIRE_MESSAGE(eventually([&] { return app.ready(); }, 15s), app.report());
  auto before = get(app.port, "/");
  REQUIRE_MESSAGE(before.status == 200, before.body << "\n" << app.report());
  CHECK(get(app.port, "/crash").status != 200);
  REQUIRE_MESSAGE(app.log_has("restarting in", 5s), app.report());
  CHECK_MESSAGE(eventually([&] { return !app.ready(); }, 2s), app.report());
  // The new proxy listener answers the ready path 503 during the 1 s re-warm.
  CHECK_MESSAGE(eventually([&] { return get(app.port, "/_knext/ready").status == 503; }, 3s),
                app.report());
  REQUIRE_MESSAGE(eventually([&] { return app.ready(); }, 15s), app.report());
  CHECK(get(app.port, "/_knext/ready").status == 200);
  auto after = get(app.port, "/");
  CHECK_MESSAGE(after.status == 200, after.body << "\n" << app.report());
  CHECK(after.body != before.body);
  CHECK(contains(get(app.admin, "/metrics").body, "knext_restarts_total 1"));
}

TEST_CASE("--restart=on-failure: past --restart-max the launcher exits with the app's status") {
  App app({"--restart", "on-failure", "--restart-max", "2", "--restart-window", "1m"},
          {node_bin(), server("fault-server.cjs")}, {{"FAULT_EXIT_AT_START", "7"}});
  auto r = app.launched->wait(20s);
  CHECK_MESSAGE(r.exit_code == 7, app.report());
  CHECK(count_lines_with(r.err, "phase child-spawned") == 3);
  CHECK(contains(r.err, "restarting in 200ms (restart 1 of 2"));
  CHECK(contains(r.err, "restarting in 400ms (restart 2 of 2"));
  CHECK(contains(r.err, "not restarting: 2 restart(s) within --restart-window"));
}

TEST_CASE("--restart=on-failure: SIGTERM while waiting to restart exits at once, cleanly") {
  App app({"--restart", "on-failure", "--restart-max", "5"},
          {node_bin(), server("fault-server.cjs")}, {{"FAULT_EXIT_AT_START", "5"}});
  REQUIRE_MESSAGE(app.log_has("restarting in 800ms", 15s), app.report());
  auto signalled = Clock::now();
  app.launched->send(SIGTERM);
  auto r = app.launched->wait(5s);
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - signalled).count();
  CHECK_MESSAGE(r.exit_code == 5, app.report());
  CHECK(contains(r.err, "SIGTERM while waiting to restart the app: not restarting"));
  CHECK(count_lines_with(r.err, "phase child-spawned") == 3);
  MESSAGE("SIGTERM during the restart backoff: exit " << r.exit_code << " after " << ms << " ms");
}

TEST_CASE("--restart=on-failure: a clean exit 0 is not restarted") {
  App app({"--restart", "on-failure"}, {node_bin(), "-e", "setTimeout(() => {}, 300)"});
  auto r = app.launched->wait(15s);
  CHECK_MESSAGE(r.exit_code == 0, app.report());
  CHECK(count_lines_with(r.err, "phase child-spawned") == 1);
}

// ---- process faults
// ------------------------------------------------------------------------------

TEST_CASE("node exits during warm-up: the launcher exits with its status, nothing left") {
  App app({"--warm-path", "/work/5000"}, {node_bin(), server("fault-server.cjs")},
          {{"FAULT_EXIT_AFTER_MS", "1000"}});
  auto r = app.launched->wait(10s);
  CHECK_MESSAGE(r.exit_code == 4, app.report());
  CHECK(contains(r.err, "phase server-listening-internal"));
  CHECK(!contains(r.err, "phase gate-open"));
}

TEST_CASE("the hook cannot load") {
  TempDir dir;
  std::string hook, expect;
  SUBCASE("a --hook path that does not exist: ungated, serving") {
    hook = (dir.path() / "missing.cjs").string();
    expect = "does not exist; the gate is off";
  }
  SUBCASE("a --hook path that is a directory: ungated, serving") {
    hook = dir.path().string();
    expect = "is not a regular file; the gate is off";
  }
  CAPTURE(hook);
  App app({"--hook", hook}, {node_bin(), server("fault-server.cjs")});
  REQUIRE_MESSAGE(app.log_has(expect, 5s), app.report());
  REQUIRE_MESSAGE(eventually([&] { return get(app.port, "/").status == 200; }, 10s), app.report());
  CHECK(app.ready());
}

TEST_CASE("a hook file that throws as node loads it: node's own error, its exit status") {
  TempDir dir;
  auto hook = dir.path() / "broken-hook.cjs";
  std::ofstream(hook) << "throw new Error('knext test: broken hook');\n";
  App app({"--hook", hook.string()}, {node_bin(), server("fault-server.cjs")});
  auto r = app.launched->wait(10s);
  CHECK_MESSAGE(r.exit_code == 1, app.report());
  CHECK(contains(r.err, "knext test: broken hook"));
  CHECK(contains(r.err, "phase child-exited"));
}

TEST_CASE("the control fd closes early or carries garbage: the app still serves and gets ready") {
  std::string mode;
  SUBCASE("closed by the app") {
    mode = "close";
  }
  SUBCASE("garbage, a 70 kB line, a message without a type") {
    mode = "garbage";
  }
  CAPTURE(mode);
  App app({"--warm-path", "/"}, {node_bin(), server("fault-server.cjs")},
          {{"FAULT_CONTROL", mode}});
  REQUIRE_MESSAGE(eventually([&] { return app.ready(); }, 15s), app.report());
  auto answer = get(app.port, "/");
  CHECK_MESSAGE(answer.status == 200, answer.body << "\n" << app.report());
  if (mode == "close") {
    CHECK(contains(app.err(), "control channel closed before the gate opened"));
  } else {
    CHECK(contains(app.err(), "phase warm-path-done"));  // the gate worked through the garbage
  }
}

TEST_CASE("a warm path that works forever: the gate opens at --warm-timeout (--warm-fail=open)") {
  App app({"--warm-path", "/work/600000", "--warm-timeout", "2s"},
          {node_bin(), server("fault-server.cjs")});
  REQUIRE_MESSAGE(app.log_has("phase server-listening-internal", 10s), app.report());
  CHECK(!knext::loopback_accepts(app.port));
  REQUIRE_MESSAGE(app.log_has("opening the gate anyway (--warm-fail=open)", 6s), app.report());
  REQUIRE_MESSAGE(eventually([&] { return app.ready(); }, 3s), app.report());
  CHECK(get(app.port, "/").status == 200);
}

// The first warm path waits on the app's own timer (node's main thread asleep) before the server
// has answered anything: after 30 ms of that it no longer holds the gate, and keeps running.
TEST_CASE("a first warm path that waits forever: the gate opens long before --warm-timeout") {
  App app({"--warm-path", "/sleep/600000", "--warm-timeout", "20s"},
          {node_bin(), server("fault-server.cjs")});
  REQUIRE_MESSAGE(app.log_has("phase server-listening-internal", 10s), app.report());
  auto listening = Clock::now();
  REQUIRE_MESSAGE(eventually([&] { return app.ready(); }, 10s), app.report());
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - listening).count();
  // Not opened by --warm-timeout (20 s): ready within the 10 s wait, the path let go as waiting
  // (the log line below), and no "opening the gate anyway".
  MESSAGE("ready " << ms << " ms after the server listened");
  CHECK(
      app.log_has("/sleep/600000 -> 0 after 1 request(s), first 0.0 ms, last 0.0 ms, waiting", 1s));
  CHECK(!contains(app.err(), "opening the gate anyway"));
  CHECK(get(app.port, "/").status == 200);
}

// With --warm-fail=exit a server that has answered nothing may be stuck: its first warm path is
// never let go as waiting, so --warm-timeout ends warm-up and the launcher stops the app.
TEST_CASE("--warm-fail=exit: a first warm path that waits forever still ends at --warm-timeout") {
  App app({"--warm-path", "/sleep/600000", "--warm-timeout", "2s", "--warm-fail", "exit"},
          {node_bin(), server("fault-server.cjs")});
  auto r = app.launched->wait(15s);
  CHECK_MESSAGE(r.exit_code == 1, app.report());
  CHECK(!contains(r.err, "phase gate-open"));
  CHECK(contains(r.err, "--warm-fail=exit"));
}

TEST_CASE("ulimit -n 64 for the launcher and node: gated, warmed, serving") {
  auto port = free_port();
  auto admin = free_port();
  Launched launched({"--admin-port", std::to_string(admin), "--warm-path", "/", "--", node_bin(),
                     server("fault-server.cjs")},
                    {.wrapper = {"prlimit", "--nofile=64:64", "--"},
                     .env = {{"PORT", std::to_string(port)}, {"HOSTNAME", "127.0.0.1"}}});
  REQUIRE_MESSAGE(eventually([&] { return get(admin, "/readyz").status == 200; }, 15s),
                  launched.err());
  CHECK(get(port, "/").status == 200);
}

TEST_CASE("a signal storm while node runs: 1,000 signals forwarded, none lost, no crash") {
  // Real-time signals queue (standard ones coalesce in the kernel), so each of 1,000 SIGRTMIN+3
  // sent to the launcher must reach the child as one; 1,000 SIGWINCH go along, coalesced.
  App app({}, {sigreport_bin()});
  REQUIRE(app.launched->wait_for_output("ready", 5s));
  for (int i = 0; i < 1000; ++i) {
    app.launched->send(SIGRTMIN + 3);
    app.launched->send(SIGWINCH);
  }
  auto rt_seen = [&] { return count_lines_with(app.launched->out(), "got SIGRTMIN+3"); };
  bool all = eventually([&] { return rt_seen() >= 1000; }, 20s);
  CHECK_MESSAGE(all, "forwarded " << rt_seen() << " of 1000");
  CHECK(count_lines_with(app.launched->out(), "got SIGWINCH") >= 1);
  CHECK(get(app.admin, "/healthz").status == 200);
  app.launched->send(SIGTERM);
  auto r = app.launched->wait(10s);
  CHECK_MESSAGE(r.exit_code == 0, app.report());
  CHECK(rt_seen() == 1000);
}

// ---- the cache volume during the run
// --------------------------------------------------------------

namespace {
// A small tmpfs standing in for the mounted cache volume; lazily unmounted at scope exit.
struct Tmpfs {
  TempDir dir;
  bool mounted = false;
  explicit Tmpfs(const std::string& size) {
    mounted = ::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted) ::umount2(dir.path().c_str(), MNT_DETACH);
  }
  void fill() {
    std::ofstream out(dir.path() / "filler", std::ios::binary);
    std::string block(65536, 'x');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
};
}  // namespace

TEST_CASE("the cache volume fills up or disappears before the flush: the app still serves") {
  Tmpfs volume("4m");
  REQUIRE_MESSAGE(volume.mounted, "tmpfs mount needs root");
  std::string how, expect_in_log;
  SUBCASE("disk full") {
    how = "full";
  }
  SUBCASE("umount -l") {
    how = "gone";
  }
  CAPTURE(how);
  App app({"--cache-dir", volume.dir.path().string(), "--warm-path", "/work/1500"},
          {node_bin(), server("fault-server.cjs")});
  REQUIRE_MESSAGE(app.log_has("phase server-listening-internal", 15s), app.report());
  if (how == "full") {
    volume.fill();
    expect_in_log =
        "node's pages not recorded on the volume: knext-prewarm-pages.txt: No space "
        "left on device";
  } else {
    // The launcher holds the volume's directory open (node gets it as /proc/self/fd/N): the
    // flush goes on into the detached volume, and nothing lands in what is now at its path.
    REQUIRE(::umount2(volume.dir.path().c_str(), MNT_DETACH) == 0);
    volume.mounted = false;
    expect_in_log = "node's pages recorded for the next cold start";
  }
  // The premise: the volume changed before the flush (it follows the 1.5 s warm path).
  REQUIRE_MESSAGE(!contains(app.err(), "compile cache on disk"), app.report());
  REQUIRE_MESSAGE(eventually([&] { return app.ready(); }, 15s), app.report());
  CHECK(get(app.port, "/").status == 200);
  std::this_thread::sleep_for(500ms);  // the flush and its log line
  CHECK(get(app.port, "/").status == 200);
  app.launched->send(SIGTERM);
  auto r = app.launched->wait(10s);
  CHECK_MESSAGE(r.exit_code == 143, app.report());
  CHECK_MESSAGE(contains(r.err, expect_in_log), r.err);
  if (how == "gone") CHECK(fs::is_empty(volume.dir.path()));
  MESSAGE("cache volume " << how << ": launcher log:\n" << r.err);
}

// ---- finding 7: warm-up connections never take PORT as their source port
// -------------------------

TEST_CASE("warm-up refuses the app's PORT as its local port, even when it is the only one free") {
  // In a network namespace of its own (a forked child, so nothing here changes the machine's
  // settings) the kernel's ephemeral range is narrowed to the one port the app is yet to bind.
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (unshare(CLONE_NEWNET) != 0 || std::system("ip link set lo up") != 0) _exit(10);
    std::ofstream("/proc/sys/net/ipv4/ip_local_port_range") << "40000 40000\n";
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = knext::loopback_address(40001);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listener, 8) != 0) {
      _exit(11);
    }
    std::thread server([listener] {
      for (;;) {
        int c = ::accept(listener, nullptr, nullptr);
        if (c < 0) return;
        char buf[1024];
        (void)::recv(c, buf, sizeof buf, 0);
        const char reply[] = "HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok";
        (void)::send(c, reply, sizeof reply - 1, MSG_NOSIGNAL);
        ::close(c);
      }
    });
    server.detach();
    auto plain = knext::http_get("http://127.0.0.1:40001/", 2000);  // gets source port 40000
    knext::avoid_local_port(40000);
    auto avoiding = knext::http_get("http://127.0.0.1:40001/", 2000);
    _exit(plain && plain->status == 200 && !avoiding ? 0 : 12);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK_MESSAGE(WEXITSTATUS(status) == 0,
                "child exit " << WEXITSTATUS(status) << " (10 netns, 11 listen, 12 result)");
}
