// The launcher as init, run for real as PID 1 of a fresh PID namespace (and, where it matters,
// as a plain child subreaper). Children are real programs: sh, sleep, cat, and tests/helpers.
#include <doctest/doctest.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "tests/integration/harness.hpp"

using namespace knext::test;

namespace {

std::vector<std::string> sh(const std::string& script) {
  return {"--", "sh", "-c", script};
}

int count_containing(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("exit codes pass through unchanged") {
  for (int code : {0, 1, 2, 32, 64, 127, 254, 255}) {
    CAPTURE(code);
    auto r = run_launcher(sh("exit " + std::to_string(code)));
    CHECK(r.exit_code == code);
  }
}

TEST_CASE("a child killed by signal N gives 128+N") {
  for (auto [name, num] : std::vector<std::pair<std::string, int>>{{"TERM", SIGTERM},
                                                                   {"HUP", SIGHUP},
                                                                   {"QUIT", SIGQUIT},
                                                                   {"KILL", SIGKILL},
                                                                   {"INT", SIGINT}}) {
    CAPTURE(name);
    // ulimit -c 0: a QUIT must not leave a core file behind.
    auto r = run_launcher(sh("ulimit -c 0; kill -" + name + " $$; sleep 5"));
    CHECK(r.exit_code == 128 + num);
  }
}

TEST_CASE("signals sent to the launcher reach a child with default handlers") {
  for (auto [name, num] : std::vector<std::pair<std::string, int>>{{"TERM", SIGTERM},
                                                                   {"INT", SIGINT},
                                                                   {"HUP", SIGHUP},
                                                                   {"USR1", SIGUSR1},
                                                                   {"USR2", SIGUSR2},
                                                                   {"QUIT", SIGQUIT}}) {
    CAPTURE(name);
    Launched l(sh("ulimit -c 0; exec sleep 30"));
    REQUIRE(l.wait_child_started());
    std::this_thread::sleep_for(50ms);  // let sh exec sleep
    l.send(num);
    auto r = l.wait(5s);
    CHECK(r.exit_code == 128 + num);  // by the signal: `sleep 30` outlasts the 5 s wait
  }
}

TEST_CASE("every forwardable signal is forwarded, and the child sees each one") {
  Launched l({"--", sigreport_bin()});
  REQUIRE(l.wait_for_output("ready"));
  for (int sig : {SIGUSR1, SIGUSR2, SIGHUP, SIGWINCH, SIGCONT, SIGALRM, SIGQUIT, SIGRTMIN + 2}) {
    l.send(sig);
    std::string name = sig == SIGRTMIN + 2 ? "got SIG" : "got SIG" + std::string(sigabbrev_np(sig));
    CHECK_MESSAGE(l.wait_for_output(name, 2s), name);
    std::this_thread::sleep_for(20ms);
  }
  l.send(SIGTERM);
  auto r = l.wait(5s);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("got SIGTERM") != std::string::npos);
}

TEST_CASE("orphans are reaped: 50 double-forked processes leave no zombie") {
  // The script counts zombies whose parent is the launcher ($PPID) after the orphans exited.
  std::string script =
      "for i in $(seq 50); do (sleep 0.2 &); done; sleep 1.5; "
      "z=0; for s in /proc/[0-9]*/stat; do set -- $(cat $s 2>/dev/null); "
      "[ \"$3\" = Z ] && [ \"$4\" = \"$PPID\" ] && z=$((z+1)); done; echo zombies=$z";
  SUBCASE("as PID 1") {
    auto r = run_launcher(sh(script));
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("zombies=0") != std::string::npos);
  }
  SUBCASE("as a child subreaper outside a PID namespace") {
    auto r = run_launcher(sh(script), {.pid_namespace = false});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("zombies=0") != std::string::npos);
    CHECK(r.err.find("subreaper") != std::string::npos);
  }
}

TEST_CASE("a command that cannot run: 127 not found, 126 not executable, one line each") {
  TempDir dir;
  auto not_exec = dir.path() / "script";
  std::ofstream(not_exec) << "#!/bin/sh\necho hi\n";
  for (auto [cmd, code] : std::vector<std::pair<std::string, int>>{{"/nonexistent/prog", 127},
                                                                   {"no-such-command-knext", 127},
                                                                   {not_exec.string(), 126},
                                                                   {"/etc", 126}}) {
    CAPTURE(cmd);
    auto r = run_launcher({"--log-level=error", "--", cmd});
    CHECK(r.exit_code == code);
    auto err_lines = lines(r.err);
    REQUIRE(err_lines.size() == 1);
    CHECK(err_lines[0].find(cmd) != std::string::npos);
  }
}

TEST_CASE("the child starts with an empty signal mask and nothing ignored") {
  // with-signals hands the launcher a blocked USR2 and ignored TSTP and PIPE.
  auto r = run_launcher({"--", "cat", "/proc/self/status"}, {.wrapper = {with_signals_bin()}});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("SigBlk:\t0000000000000000") != std::string::npos);
  CHECK(r.out.find("SigIgn:\t0000000000000000") != std::string::npos);

  // The wrapper really does set that state (so the test above can fail).
  auto direct = run_launcher(
      {"--", "sh", "-c", "exit 0"},
      {.pid_namespace = false, .wrapper = {with_signals_bin(), "cat", "/proc/self/status"}});
  CHECK(direct.out.find("SigIgn:\t0000000000000000") == std::string::npos);
}

// Killed by the grace timer, not by the TERM and not by sleep ending: exit 137 (SIGKILL) and the
// launcher's SIGKILL line. No earlier than --grace (a lower bound noise cannot break); a launcher
// that never kills waits out `sleep 30` and fails the 10 s wait instead.
TEST_CASE("a child that ignores SIGTERM is killed at --grace: exit 137, SIGKILL logged") {
  Launched l({"--grace=1s", "--", "sh", "-c", "trap '' TERM; exec sleep 30"});
  REQUIRE(l.wait_child_started());
  std::this_thread::sleep_for(100ms);
  auto sent = std::chrono::steady_clock::now();
  l.send(SIGTERM);
  auto r = l.wait(10s);
  double after_signal =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent).count();
  CHECK(r.exit_code == 137);
  CHECK(after_signal >= 950);
  CHECK(r.err.find("SIGKILL") != std::string::npos);
}

// A hang (waiting out `sleep 100`) ends in run_launcher's 10 s timeout, exit code -1. Which way a
// leftover ended shows in the log: the TERM, or the SIGKILL after --leftover-grace.
TEST_CASE("a background grandchild does not hang the exit") {
  const std::string killed_line = "leftover processes still running; sent SIGKILL";
  SUBCASE("as PID 1: exit code kept, no leftover grace spent") {
    auto r = run_launcher(sh("sleep 100 & exit 3"));
    CHECK(r.exit_code == 3);
    CHECK_MESSAGE(r.err.find(killed_line) == std::string::npos, r.err);
  }
  SUBCASE("as subreaper: the leftover is terminated by the TERM, not left running") {
    auto r = run_launcher(sh("sleep 100 & echo $!; exit 4"), {.pid_namespace = false});
    CHECK(r.exit_code == 4);
    CHECK_MESSAGE(r.err.find(killed_line) == std::string::npos, r.err);
    pid_t leftover = std::stoi(r.out);
    CHECK_FALSE(process_exists(leftover));
  }
  SUBCASE("a leftover that ignores TERM is killed after --leftover-grace") {
    // The child exits only once the leftover ignores TERM (it touches `ignoring` after the
    // trap), so the TERM cannot reach it first.
    TempDir dir;
    std::string flag = (dir.path() / "ignoring").string();
    auto r = run_launcher({"--leftover-grace=300ms", "--", "sh", "-c",
                           "(trap '' TERM; touch \"$0\"; exec sleep 100) & "
                           "while [ ! -e \"$0\" ]; do sleep 0.01; done; echo $!; exit 5",
                           flag},
                          {.pid_namespace = false});
    CHECK(r.exit_code == 5);
    pid_t leftover = std::stoi(r.out);
    CHECK_FALSE(process_exists(leftover));
    CHECK_MESSAGE(r.err.find(killed_line) != std::string::npos, r.err);
  }
}

TEST_CASE("--signal-group sends signals to the child's whole process group") {
  std::string script = "'" + sigreport_bin() + "' & wait";
  SUBCASE("with it, the grandchild gets USR1") {
    Launched l({"--signal-group", "--", "sh", "-c", script});
    REQUIRE(l.wait_for_output("ready"));
    l.send(SIGUSR1);
    auto r = l.wait(5s);
    CHECK(r.exit_code == 128 + SIGUSR1);  // sh dies of USR1 (default action)
    CHECK(r.out.find("got SIGUSR1") != std::string::npos);
  }
  SUBCASE("without it, only the direct child does") {
    Launched l({"--", "sh", "-c", script});
    REQUIRE(l.wait_for_output("ready"));
    l.send(SIGUSR1);
    auto r = l.wait(5s);
    CHECK(r.exit_code == 128 + SIGUSR1);
    CHECK(r.out.find("got SIGUSR1") == std::string::npos);
    CHECK(r.out.find("got SIGTERM") != std::string::npos);  // as a leftover
  }
}

TEST_CASE("stdio passes straight to the child: inherited fds, nothing copied") {
  auto r = run_launcher({"--", "sh", "-c", "cat; readlink /proc/self/fd/1"},
                        {.stdin_text = "hello through stdin\n"});
  CHECK(r.exit_code == 0);
  auto out = lines(r.out);
  REQUIRE(out.size() == 2);
  CHECK(out[0] == "hello through stdin");
  CHECK(out[1].find("/out") != std::string::npos);  // the file itself, not a pipe
}

TEST_CASE("phases are logged with ms since exec, as text and as JSON") {
  auto text = run_launcher({"--", "true"});
  CHECK(text.exit_code == 0);
  for (auto phase :
       {"phase exec", "phase config-parsed", "phase child-spawned", "phase child-exited"}) {
    CHECK_MESSAGE(text.err.find(phase) != std::string::npos, phase);
  }
  auto json = run_launcher({"--log-format=json", "--", "true"});
  CHECK(json.exit_code == 0);
  int json_lines = 0;
  for (const auto& line : lines(json.err)) {
    CHECK(line.rfind("{\"t_ms\":", 0) == 0);
    CHECK(line.back() == '}');
    ++json_lines;
  }
  CHECK(count_containing(json.err, "\"phase\":\"child-spawned\"") == 1);
  CHECK(json_lines >= 3);
}

TEST_CASE("bad options exit 2 with one line naming the flag") {
  for (auto args : std::vector<std::vector<std::string>>{
           {"--grace=forever", "--", "true"}, {"--bogus"}, {"--log-format=xml"}}) {
    auto r = run_launcher(args, {.pid_namespace = false});
    CHECK(r.exit_code == 2);
    auto err = lines(r.err);
    REQUIRE(err.size() == 1);
    CHECK(err[0].find("knext-launch: ") == 0);
  }
  auto help = run_launcher({"--help"}, {.pid_namespace = false});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("--grace") != std::string::npos);
}
