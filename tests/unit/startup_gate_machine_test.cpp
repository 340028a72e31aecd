#include "probes/gate/startup_gate_machine.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace knext;
using namespace knext::gate;
using namespace std::chrono_literals;
using Phase = StartupGateMachine::Phase;

namespace {

Settings handoff_settings() {
  Settings s;
  s.public_port = 8080;
  s.warm_paths = {"/", "/about"};
  s.warm_timeout = 60'000ms;
  s.deadline_ms = 60'100;  // started 100 ms after exec
  s.warm_repeat = 8;
  s.background_budget = 30'000ms;
  return s;
}

Settings proxy_settings() {
  Settings s = handoff_settings();
  s.proxy = true;
  s.internal_port = 40'000;
  return s;
}

template <typename T>
const T* find(const Commands& commands) {
  for (const auto& c : commands) {
    if (const auto* t = std::get_if<T>(&c)) return t;
  }
  return nullptr;
}

template <typename T>
int count(const Commands& commands) {
  int n = 0;
  for (const auto& c : commands) n += std::holds_alternative<T>(c) ? 1 : 0;
  return n;
}

const MarkPhase* phase_mark(const Commands& commands, const std::string& name) {
  for (const auto& c : commands) {
    if (const auto* m = std::get_if<MarkPhase>(&c); m != nullptr && m->name == name) return m;
  }
  return nullptr;
}

const Log* log_at(const Commands& commands, Level level) {
  for (const auto& c : commands) {
    if (const auto* l = std::get_if<Log>(&c); l != nullptr && l->level == level) return l;
  }
  return nullptr;
}

// The warm-up command in `commands`, checked field by field.
void check_warmup(const Commands& commands, int port, std::chrono::milliseconds left, int pid) {
  const auto* warm = find<StartWarmup>(commands);
  REQUIRE(warm != nullptr);
  CHECK(warm->host == "127.0.0.1");
  CHECK(warm->port == port);
  CHECK(warm->time_left == left);
  CHECK(warm->repeat == 8);
  CHECK(warm->node_pid == pid);
}

WarmPathStatus path_status(const std::string& path, WarmState state, long http, bool holds) {
  WarmPathStatus s;
  s.path = path;
  s.state = state;
  s.last_status = http;
  s.attempts = 3;
  s.first_ms = 120.5;
  s.last_ms = 8.3;
  s.result = state == WarmState::kOk ? "converged" : "server-error";
  s.holds_gate = holds;
  return s;
}

// A handoff gate that was started and told where the server listens.
StartupGateMachine warming_handoff(Settings s = handoff_settings()) {
  StartupGateMachine m(std::move(s));
  m.handle(Started{4242}, 100);
  m.handle(HookListening{"127.0.0.1", 40'001, "", true}, 300);
  return m;
}

// Warm-up finished, flush confirmed, the hook told to open.
StartupGateMachine opening_handoff(Settings s = handoff_settings()) {
  auto m = warming_handoff(std::move(s));
  m.handle(WarmPath{path_status("/", WarmState::kOk, 200, false)}, 900);
  m.handle(WarmPath{path_status("/about", WarmState::kOk, 200, false)}, 950);
  m.handle(WarmGateReleased{}, 960);
  m.handle(HookFlushed{true, ""}, 980);
  return m;
}

}  // namespace

TEST_CASE("gate machine: nothing happens before the start, and a second start is ignored") {
  StartupGateMachine m(handoff_settings());
  CHECK(m.handle(HookListening{"127.0.0.1", 1, "", true}, 10).empty());
  CHECK(m.handle(Deadline{}, 10).empty());
  CHECK(m.handle(ChildExited{}, 10).empty());
  CHECK(m.phase() == Phase::kIdle);
  auto started = m.handle(Started{4242}, 100);
  REQUIRE(find<StartDeadline>(started) != nullptr);
  CHECK(find<StartDeadline>(started)->after == 60'000ms);
  CHECK(m.phase() == Phase::kListening);
  CHECK(m.handle(Started{1}, 200).empty());
}

TEST_CASE("gate machine: the start lists the critical paths as pending, background as asked") {
  auto s = handoff_settings();
  s.background_pending = true;
  StartupGateMachine m(s);
  m.handle(Started{4242}, 100);
  const auto& r = m.report();
  REQUIRE(r.warm_paths.size() == 2);
  CHECK(r.warm_paths[0].path == "/");
  CHECK(r.warm_paths[0].state == WarmState::kPending);
  CHECK(r.paths_changed);
  CHECK(r.background.state == "pending");
  CHECK(!r.gate_open);
  StartupGateMachine plain(handoff_settings());
  plain.handle(Started{4242}, 100);
  CHECK(plain.report().background.state == "off");
}

TEST_CASE("gate machine: hello marks the hook and names node's pid for the warm-up") {
  StartupGateMachine m(handoff_settings());
  m.handle(Started{4242}, 100);
  auto hello = m.handle(HookHello{5151, "v24.1.0"}, 150);
  REQUIRE(phase_mark(hello, "hook-loaded") != nullptr);
  CHECK(phase_mark(hello, "hook-loaded")->detail == "node v24.1.0");
  auto listening = m.handle(HookListening{"127.0.0.1", 40'001, "", true}, 1'100);
  REQUIRE(phase_mark(listening, "server-listening-internal") != nullptr);
  CHECK(phase_mark(listening, "server-listening-internal")->detail == "127.0.0.1:40001");
  check_warmup(listening, 40'001, 59'000ms, 5151);
  CHECK(m.phase() == Phase::kWarming);
}

TEST_CASE("gate machine: without a hello the warm-up watches the child's pid") {
  auto m = StartupGateMachine(handoff_settings());
  m.handle(Started{4242}, 100);
  auto listening = m.handle(HookListening{"127.0.0.1", 40'001, "", true}, 300);
  REQUIRE(find<StartWarmup>(listening) != nullptr);
  CHECK(find<StartWarmup>(listening)->node_pid == 4242);
}

TEST_CASE("gate machine: a repeated listening message starts nothing twice") {
  auto m = warming_handoff();
  CHECK(m.handle(HookListening{"127.0.0.1", 40'002, "", true}, 400).empty());
  CHECK(m.handle(HookListening{"", 8080, "", false}, 400).empty());
}

TEST_CASE("gate machine: the whole handoff path, warm to flushed to open to background") {
  auto s = handoff_settings();
  s.background_pending = true;
  auto m = warming_handoff(s);

  // A path still repeating holds the gate and marks nothing.
  auto repeating = m.handle(WarmPath{path_status("/", WarmState::kWarming, 200, true)}, 500);
  CHECK(repeating.empty());
  auto done = m.handle(WarmPath{path_status("/", WarmState::kOk, 200, false)}, 900);
  const auto* mark = phase_mark(done, "warm-path-done");
  REQUIRE(mark != nullptr);
  CHECK(mark->detail == "/ -> 200 after 3 request(s), first 120.5 ms, last 8.3 ms, converged");
  CHECK(m.report().warm_paths[0].done_ms == 900);
  m.handle(WarmPath{path_status("/about", WarmState::kOk, 200, false)}, 950);

  auto released = m.handle(WarmGateReleased{}, 960);
  REQUIRE(find<SendFlush>(released) != nullptr);
  CHECK(find<SendFlush>(released)->wait == kFlushWait);
  CHECK(find<SendOpen>(released) == nullptr);
  CHECK(m.phase() == Phase::kFlushing);

  auto flushed = m.handle(HookFlushed{true, ""}, 980);
  CHECK(count<StopFlushTimer>(flushed) == 1);
  REQUIRE(log_at(flushed, Level::kDebug) != nullptr);
  CHECK(log_at(flushed, Level::kDebug)->text == "node flushed its compile cache");
  CHECK(count<SendOpen>(flushed) == 1);
  CHECK(count<NotifyFlushed>(flushed) == 1);
  CHECK(!m.report().gate_open);  // the hook's word is not enough

  auto opened = m.handle(HookOpened{}, 990);
  REQUIRE(find<CheckPort>(opened) != nullptr);
  CHECK(find<CheckPort>(opened)->port == 8080);
  auto accepted = m.handle(PortAccepted{}, 1'000);
  REQUIRE(phase_mark(accepted, "gate-open") != nullptr);
  CHECK(phase_mark(accepted, "gate-open")->detail == "public port 8080");
  CHECK(count<StopDeadline>(accepted) == 1);
  CHECK(m.report().gate_open);
  CHECK(m.phase() == Phase::kOpen);
  REQUIRE(find<SendWatch>(accepted) != nullptr);
  CHECK(find<SendWatch>(accepted)->on);
  REQUIRE(find<StartBackground>(accepted) != nullptr);
  CHECK(find<StartBackground>(accepted)->budget == 30'000ms);
  CHECK(m.report().background.state == "running");
  CHECK(m.report().background.started_ms == 1'000);

  auto bg_path = path_status("/blog", WarmState::kWarming, 200, false);
  bg_path.background = true;
  m.handle(WarmPath{bg_path}, 1'400);
  CHECK(m.report().background.total == 1);
  CHECK(m.report().background.warmed == 0);
  bg_path.state = WarmState::kOk;
  m.handle(WarmPath{bg_path}, 1'500);
  CHECK(m.report().background.total == 1);
  CHECK(m.report().background.warmed == 1);
  CHECK(m.report().warm_paths.back().done_ms == 1'500);
  CHECK(m.report().warm_paths.size() == 3);

  auto bg_done = m.handle(BackgroundDone{1, 1, "done"}, 2'000);
  REQUIRE(find<SendWatch>(bg_done) != nullptr);
  CHECK(!find<SendWatch>(bg_done)->on);
  REQUIRE(phase_mark(bg_done, "background-warm-done") != nullptr);
  CHECK(phase_mark(bg_done, "background-warm-done")->detail == "1 of 1 routes, done");
  CHECK(m.report().background.state == "done");
  CHECK(m.report().background.reason == "done");
  CHECK(m.report().background.done_ms == 2'000);
}

TEST_CASE("gate machine: without --warm-path auto the background is off and stays so") {
  auto m = opening_handoff();
  m.handle(HookOpened{}, 990);
  auto accepted = m.handle(PortAccepted{}, 1'000);
  REQUIRE(find<StartBackground>(accepted) != nullptr);
  CHECK(find<StartBackground>(accepted)->budget == 0ms);
  CHECK_FALSE(find<StartBackground>(accepted)->after_preload);  // nothing was deferred
  CHECK(find<SendWatch>(accepted) == nullptr);
  auto bg_done = m.handle(BackgroundDone{0, 0, "done"}, 1'100);
  CHECK(count<SendWatch>(bg_done) == 1);
  CHECK(phase_mark(bg_done, "background-warm-done") == nullptr);
  CHECK(m.report().background.state == "off");
}

TEST_CASE("gate machine: a zero background budget turns background warming off") {
  auto s = handoff_settings();
  s.background_pending = true;
  s.background_budget = 0ms;
  auto m = opening_handoff(s);
  m.handle(HookOpened{}, 990);
  auto accepted = m.handle(PortAccepted{}, 1'000);
  CHECK(find<StartBackground>(accepted)->budget == 0ms);
  CHECK(m.report().background.state == "off");
}

TEST_CASE("gate machine: a repeated opened message checks the port once, background once") {
  auto m = opening_handoff();
  CHECK(count<CheckPort>(m.handle(HookOpened{}, 990)) == 1);
  CHECK(m.handle(HookOpened{}, 991).empty());
  CHECK(count<StartBackground>(m.handle(PortAccepted{}, 1'000)) == 1);
  CHECK(m.handle(HookOpened{}, 1'010).empty());
  CHECK(m.handle(PortAccepted{}, 1'020).empty());
}

TEST_CASE("gate machine: a refused port check is logged; the gate stays closed until it accepts") {
  auto m = opening_handoff();
  CHECK(m.handle(PortCheckFailed{"connection refused"}, 985).empty());  // no check running
  m.handle(HookOpened{}, 990);
  auto refused = m.handle(PortCheckFailed{"connection refused"}, 995);
  REQUIRE(log_at(refused, Level::kWarn) != nullptr);
  CHECK(log_at(refused, Level::kWarn)->text ==
        "port 8080 does not accept connections yet (connection refused); not ready until it does");
  CHECK(!m.report().gate_open);
  m.handle(PortAccepted{}, 1'200);
  CHECK(m.report().gate_open);
}

TEST_CASE("gate machine: the hook could not redirect the listen: no warm-up, ready on PORT") {
  StartupGateMachine m(handoff_settings());
  m.handle(Started{4242}, 100);
  CHECK(log_at(m.handle(HookError{"EACCES on 127.0.0.1"}, 150), Level::kWarn)->text ==
        "hook: EACCES on 127.0.0.1");
  auto listening = m.handle(HookListening{"", 8080, "0.0.0.0", false}, 200);
  REQUIRE(log_at(listening, Level::kWarn) != nullptr);
  CHECK(log_at(listening, Level::kWarn)->text ==
        "hook could not hold the public port back (EACCES on 127.0.0.1); port 8080 is open "
        "without warm-up");
  CHECK(count<StopDeadline>(listening) == 1);
  CHECK(find<StartWarmup>(listening) == nullptr);
  REQUIRE(find<CheckPort>(listening) != nullptr);
  CHECK(find<CheckPort>(listening)->host == "0.0.0.0");
  auto accepted = m.handle(PortAccepted{}, 250);
  CHECK(phase_mark(accepted, "gate-open")->detail == "ungated");
  CHECK(find<StartBackground>(accepted) == nullptr);
  CHECK(m.report().gate_open);
  CHECK(m.handle(Deadline{}, 60'100).empty());
}

TEST_CASE("gate machine: without a hook error the fallback says no reason was given") {
  StartupGateMachine m(handoff_settings());
  m.handle(Started{4242}, 100);
  auto listening = m.handle(HookListening{"", 8080, "", false}, 200);
  CHECK(log_at(listening, Level::kWarn)->text ==
        "hook could not hold the public port back (no reason given); port 8080 is open without "
        "warm-up");
}

TEST_CASE("gate machine: ungated stops the warm-up and follows the port, once") {
  auto m = warming_handoff();
  auto ungated = m.handle(HookUngated{"a listen on a handle or fd, which may be PORT"}, 400);
  CHECK(count<StopDeadline>(ungated) == 1);
  CHECK(count<CancelWarmup>(ungated) == 1);
  REQUIRE(log_at(ungated, Level::kWarn) != nullptr);
  CHECK(log_at(ungated, Level::kWarn)->text ==
        "the gate cannot hold this app back (a listen on a handle or fd, which may be PORT); "
        "running ungated: ready once port 8080 accepts");
  CHECK(count<CheckPort>(ungated) == 1);
  CHECK(m.handle(HookUngated{"again"}, 410).empty());
  auto accepted = m.handle(PortAccepted{}, 500);
  CHECK(phase_mark(accepted, "gate-open")->detail ==
        "ungated: a listen on a handle or fd, which may be PORT");
  CHECK(m.handle(Deadline{}, 60'100).empty());
}

TEST_CASE("gate machine: ungated without a reason says so") {
  auto m = warming_handoff();
  auto ungated = m.handle(HookUngated{""}, 400);
  CHECK(log_at(ungated, Level::kWarn)->text ==
        "the gate cannot hold this app back (no reason given); running ungated: ready once port "
        "8080 accepts");
}

TEST_CASE("gate machine: busy and idle reach the warm-up worker") {
  auto m = opening_handoff();
  auto busy = m.handle(HookBusy{true}, 1'000);
  REQUIRE(find<SetBusy>(busy) != nullptr);
  CHECK(find<SetBusy>(busy)->busy);
  CHECK(!find<SetBusy>(m.handle(HookBusy{false}, 1'001))->busy);
}

TEST_CASE("gate machine: a critical path answering 4xx/5xx is logged once") {
  auto m = warming_handoff();
  auto failed = m.handle(WarmPath{path_status("/about", WarmState::kFailed, 500, false)}, 700);
  REQUIRE(log_at(failed, Level::kWarn) != nullptr);
  CHECK(log_at(failed, Level::kWarn)->text ==
        "warm path /about answered HTTP 500 (server-error); not retried");
  CHECK(phase_mark(failed, "warm-path-done") == nullptr);
  CHECK(m.handle(WarmPath{path_status("/about", WarmState::kFailed, 500, false)}, 710).empty());
}

TEST_CASE("gate machine: warm failure with --warm-fail=open opens the gate anyway") {
  auto m = warming_handoff();
  m.handle(WarmPath{path_status("/", WarmState::kOk, 200, false)}, 600);
  m.handle(WarmPath{path_status("/about", WarmState::kFailed, 500, false)}, 700);
  auto released = m.handle(WarmGateReleased{}, 710);
  REQUIRE(log_at(released, Level::kWarn) != nullptr);
  CHECK(log_at(released, Level::kWarn)->text ==
        "warm-up failed: /about (HTTP 500); opening the gate anyway (--warm-fail=open)");
  CHECK(count<SendFlush>(released) == 1);
  CHECK(find<RequestShutdown>(released) == nullptr);
}

TEST_CASE("gate machine: warm failure with --warm-fail=exit stops the app with exit 1") {
  auto s = handoff_settings();
  s.exit_on_warm_fail = true;
  auto m = warming_handoff(s);
  m.handle(WarmPath{path_status("/", WarmState::kOk, 200, false)}, 600);
  auto worker_gone = path_status("/about", WarmState::kFailed, 0, false);
  worker_gone.last_error = "Connection refused";
  m.handle(WarmPath{worker_gone}, 700);
  auto released = m.handle(WarmGateReleased{}, 710);
  const auto* stop = find<RequestShutdown>(released);
  REQUIRE(stop != nullptr);
  CHECK(stop->reason == "warm-up failed: /about (Connection refused); stopping (--warm-fail=exit)");
  CHECK(stop->exit_code == kStartupFailedExit);
  CHECK(find<SendFlush>(released) == nullptr);
  CHECK(m.phase() == Phase::kStopped);
  CHECK(m.handle(HookOpened{}, 720).empty());
  CHECK(m.handle(ChannelClosed{}, 720).empty());
  CHECK(m.handle(Deadline{}, 60'100).empty());
  CHECK(count<CancelWarmup>(m.handle(ChildExited{}, 800)) == 1);
}

TEST_CASE("gate machine: paths the worker never finished count as failed when it lets go") {
  auto m = warming_handoff();
  m.handle(WarmPath{path_status("/", WarmState::kOk, 200, false)}, 600);
  auto released = m.handle(WarmGateReleased{}, 700);
  const auto& about = m.report().warm_paths[1];
  CHECK(about.state == WarmState::kFailed);
  CHECK(!about.holds_gate);
  CHECK(about.last_error == "warm-up worker not running");
  CHECK(log_at(released, Level::kWarn)->text ==
        "warm-up failed: /about (warm-up worker not running); opening the gate anyway "
        "(--warm-fail=open)");
  CHECK(m.handle(WarmGateReleased{}, 710).empty());
}

TEST_CASE("gate machine: a path that stops holding the gate short of ok keeps its done time") {
  auto m = warming_handoff();
  auto waiting = path_status("/", WarmState::kWarming, 200, true);
  m.handle(WarmPath{waiting}, 500);
  waiting.holds_gate = false;
  waiting.result = "not-paying";
  auto let_go = m.handle(WarmPath{waiting}, 650);
  CHECK(phase_mark(let_go, "warm-path-done") != nullptr);
  CHECK(m.report().warm_paths[0].done_ms == 650);
  waiting.state = WarmState::kOk;
  m.handle(WarmPath{waiting}, 900);
  CHECK(m.report().warm_paths[0].done_ms == 900);  // finishing later is news too
}

TEST_CASE(
    "gate machine: a deferred path done after the gate is marked once, a let-go one not again") {
  auto s = handoff_settings();
  s.background_pending = true;
  auto m = warming_handoff(s);
  // "/" is let go as waiting; "/about" (deferred, --warm-gate=first) never held the gate.
  auto waiting = path_status("/", WarmState::kWarming, 0, true);
  m.handle(WarmPath{waiting}, 500);
  waiting.holds_gate = false;
  waiting.result = "waiting";
  CHECK(phase_mark(m.handle(WarmPath{waiting}, 650), "warm-path-done") != nullptr);
  auto deferred = path_status("/about", WarmState::kPending, 0, false);
  CHECK(phase_mark(m.handle(WarmPath{deferred}, 660), "warm-path-done") == nullptr);
  m.handle(WarmGateReleased{}, 670);
  m.handle(HookFlushed{true, ""}, 680);
  m.handle(HookOpened{}, 690);
  m.handle(PortAccepted{}, 700);
  REQUIRE(m.report().gate_open);

  waiting.state = WarmState::kOk;
  waiting.last_status = 200;
  CHECK(phase_mark(m.handle(WarmPath{waiting}, 900), "warm-path-done") == nullptr);
  deferred.state = WarmState::kWarming;
  CHECK(phase_mark(m.handle(WarmPath{deferred}, 950), "warm-path-done") == nullptr);
  deferred.state = WarmState::kOk;
  deferred.last_status = 200;
  deferred.result = "converged";
  auto done = m.handle(WarmPath{deferred}, 1'000);
  const auto* mark = phase_mark(done, "warm-path-done");
  REQUIRE(mark != nullptr);
  CHECK(mark->detail ==
        "/about -> 200 after 3 request(s), first 120.5 ms, last 8.3 ms, converged, after the gate");
  CHECK(m.report().warm_paths[1].done_ms == 1'000);
}

TEST_CASE("gate machine: flush timeout opens the gate; a late flushed still counts once") {
  auto m = warming_handoff();
  m.handle(WarmPath{path_status("/", WarmState::kOk, 200, false)}, 600);
  m.handle(WarmPath{path_status("/about", WarmState::kOk, 200, false)}, 600);
  m.handle(WarmGateReleased{}, 610);
  auto timeout = m.handle(FlushTimeout{}, 2'610);
  CHECK(log_at(timeout, Level::kWarn)->text ==
        "node did not confirm the compile-cache flush; opening the gate anyway");
  CHECK(count<SendOpen>(timeout) == 1);
  auto late = m.handle(HookFlushed{false, "EROFS"}, 3'000);
  CHECK(log_at(late, Level::kInfo)->text == "compile cache not flushed: EROFS");
  CHECK(count<SendOpen>(late) == 0);
  CHECK(count<NotifyFlushed>(late) == 1);
  CHECK(m.handle(HookFlushed{true, ""}, 3'100).empty());
  CHECK(m.handle(FlushTimeout{}, 4'000).empty());
}

TEST_CASE("gate machine: a flushed nobody asked for opens nothing") {
  auto m = warming_handoff();
  CHECK(m.handle(HookFlushed{true, ""}, 500).empty());
  CHECK(m.handle(FlushTimeout{}, 500).empty());
  CHECK(m.phase() == Phase::kWarming);
}

TEST_CASE("gate machine: the deadline stops a server that never listened") {
  StartupGateMachine m(handoff_settings());
  m.handle(Started{4242}, 100);
  m.handle(HookHello{5151, "v24.1.0"}, 150);
  auto deadline = m.handle(Deadline{}, 60'100);
  const auto* stop = find<RequestShutdown>(deadline);
  REQUIRE(stop != nullptr);
  CHECK(stop->reason == "the server did not listen within --warm-timeout 60000ms; stopping it");
  CHECK(stop->exit_code == 1);
  CHECK(m.phase() == Phase::kStopped);
}

TEST_CASE("gate machine: the deadline changes nothing once listening or while stopping") {
  CHECK(warming_handoff().handle(Deadline{}, 60'100).empty());
  StartupGateMachine m(handoff_settings());
  m.handle(Started{4242}, 100);
  CHECK(m.handle(ShuttingDown{}, 200).empty());
  CHECK(m.handle(Deadline{}, 60'100).empty());
}

TEST_CASE("gate machine: the control channel closing early fails open onto PORT") {
  auto m = warming_handoff();
  auto closed = m.handle(ChannelClosed{}, 500);
  CHECK(count<CancelWarmup>(closed) == 1);
  CHECK(log_at(closed, Level::kWarn)->text ==
        "the node hook's control channel closed before the gate opened; the hook fails open, so "
        "the app listens on PORT without warm-up: ready once PORT accepts");
  REQUIRE(find<CheckPort>(closed) != nullptr);
  auto accepted = m.handle(PortAccepted{}, 600);
  CHECK(phase_mark(accepted, "gate-open")->detail == "ungated: control channel closed");
}

TEST_CASE("gate machine: the channel closing after open, or while stopping, is no news") {
  auto open = opening_handoff();
  open.handle(HookOpened{}, 990);
  open.handle(PortAccepted{}, 1'000);
  auto closed = open.handle(ChannelClosed{}, 5'000);
  CHECK(count<CancelWarmup>(closed) == 1);
  CHECK(closed.size() == 1);

  auto stopping = warming_handoff();
  stopping.handle(ShuttingDown{}, 400);
  auto closed_stopping = stopping.handle(ChannelClosed{}, 500);
  CHECK(closed_stopping.size() == 1);
  CHECK(count<CancelWarmup>(closed_stopping) == 1);
}

TEST_CASE("gate machine: the child exiting mid-warm-up stops everything and closes the gate") {
  auto m = warming_handoff();
  auto exited = m.handle(ChildExited{}, 500);
  CHECK(count<StopDeadline>(exited) == 1);
  CHECK(count<StopPortCheck>(exited) == 1);
  CHECK(count<CancelWarmup>(exited) == 1);
  CHECK(m.phase() == Phase::kStopped);
  CHECK(!m.report().gate_open);
  // What was under way when it died changes nothing now.
  CHECK(m.handle(WarmGateReleased{}, 510).empty());
  CHECK(m.handle(ChannelClosed{}, 520).empty());
  CHECK(m.handle(Deadline{}, 60'100).empty());
}

TEST_CASE("gate machine: the child exiting after open closes the gate") {
  auto m = opening_handoff();
  m.handle(HookOpened{}, 990);
  m.handle(PortAccepted{}, 1'000);
  REQUIRE(m.report().gate_open);
  m.handle(ChildExited{}, 2'000);
  CHECK(!m.report().gate_open);
  CHECK(m.handle(PortAccepted{}, 2'010).empty());
}

TEST_CASE("gate machine: proxy warms the internal port at once and opens without a flush") {
  auto s = proxy_settings();
  s.background_pending = true;
  StartupGateMachine m(s);
  auto started = m.handle(Started{4242}, 100);
  CHECK(find<StartDeadline>(started) == nullptr);
  check_warmup(started, 40'000, 60'000ms, 4242);
  m.handle(WarmPath{path_status("/", WarmState::kOk, 200, false)}, 600);
  m.handle(WarmPath{path_status("/about", WarmState::kOk, 200, false)}, 600);
  auto released = m.handle(WarmGateReleased{}, 610);
  CHECK(find<SendFlush>(released) == nullptr);
  REQUIRE(find<OpenProxy>(released) != nullptr);
  CHECK(find<OpenProxy>(released)->upstream_port == 40'000);
  CHECK(!m.report().gate_open);
  auto opened = m.handle(ProxyOpened{true, "", 8080}, 620);
  CHECK(phase_mark(opened, "gate-open")->detail == "public port 8080 (proxy)");
  CHECK(m.report().gate_open);
  CHECK(log_at(opened, Level::kInfo)->text ==
        "background warming needs the handoff gate to see user requests; it is off");
  CHECK(find<StartBackground>(opened)->budget == 0ms);
  CHECK(find<SendWatch>(opened) == nullptr);
  CHECK(m.report().background.state == "off");
  CHECK(m.handle(ProxyOpened{true, "", 8080}, 630).empty());
  auto bg_done = m.handle(BackgroundDone{0, 0, "done"}, 700);
  CHECK(bg_done.empty());  // no hook to tell
}

TEST_CASE("gate machine: proxy whose server never answered stops as never listening") {
  StartupGateMachine m(proxy_settings());
  m.handle(Started{4242}, 100);
  auto refused = path_status("/", WarmState::kFailed, 0, false);
  refused.last_error = "timeout";
  m.handle(WarmPath{refused}, 60'000);
  auto released = m.handle(WarmGateReleased{}, 60'010);
  const auto* stop = find<RequestShutdown>(released);
  REQUIRE(stop != nullptr);
  CHECK(stop->reason == "the server did not listen within --warm-timeout 60000ms; stopping it");
  CHECK(find<OpenProxy>(released) == nullptr);
}

TEST_CASE("gate machine: proxy whose server answered badly follows --warm-fail=open") {
  StartupGateMachine m(proxy_settings());
  m.handle(Started{4242}, 100);
  m.handle(WarmPath{path_status("/", WarmState::kFailed, 500, false)}, 600);
  auto released = m.handle(WarmGateReleased{}, 610);
  CHECK(find<RequestShutdown>(released) == nullptr);
  CHECK(count<OpenProxy>(released) == 1);
}

TEST_CASE("gate machine: proxy that cannot open stops the app") {
  StartupGateMachine m(proxy_settings());
  m.handle(Started{4242}, 100);
  m.handle(WarmPath{path_status("/", WarmState::kOk, 200, false)}, 600);
  m.handle(WarmPath{path_status("/about", WarmState::kOk, 200, false)}, 600);
  m.handle(WarmGateReleased{}, 610);
  auto failed = m.handle(ProxyOpened{false, "bad upstream address", 8080}, 620);
  const auto* stop = find<RequestShutdown>(failed);
  REQUIRE(stop != nullptr);
  CHECK(stop->reason == "proxy gate: bad upstream address");
  CHECK(stop->exit_code == 1);
  CHECK(!m.report().gate_open);
  CHECK(m.phase() == Phase::kStopped);
}

TEST_CASE("gate machine: a proxy open result nobody asked for changes nothing") {
  StartupGateMachine m(proxy_settings());
  m.handle(Started{4242}, 100);
  CHECK(m.handle(ProxyOpened{true, "", 8080}, 200).empty());
  CHECK(!m.report().gate_open);
  StartupGateMachine handoff = opening_handoff();
  CHECK(handoff.handle(ProxyOpened{true, "", 8080}, 1'000).empty());
}

TEST_CASE("gate machine: warm results after the child exited do not stop a restart") {
  // A warm-up that lets go while the child is down does nothing (the run restarts it with a
  // fresh gate).
  auto m = warming_handoff();
  m.handle(ChildExited{}, 500);
  CHECK(m.handle(WarmPath{path_status("/", WarmState::kOk, 200, false)}, 510).empty());
  CHECK(m.handle(BackgroundDone{0, 0, "stopped"}, 510).empty());
}

TEST_CASE("gate machine: under --prewarm the flush ends the run: PORT stays shut, no background") {
  auto s = handoff_settings();
  s.open_after_flush = false;
  s.background_pending = true;
  auto m = warming_handoff(s);
  m.handle(WarmPath{path_status("/", WarmState::kOk, 200, false)}, 600);
  m.handle(WarmPath{path_status("/about", WarmState::kOk, 200, false)}, 600);
  m.handle(WarmGateReleased{}, 610);
  auto flushed = m.handle(HookFlushed{true, ""}, 700);
  CHECK(count<SendOpen>(flushed) == 0);
  CHECK(count<CheckPort>(flushed) == 0);
  CHECK(phase_mark(flushed, "gate-open") == nullptr);
  REQUIRE(find<StartBackground>(flushed) != nullptr);
  CHECK(find<StartBackground>(flushed)->budget.count() == 0);  // the worker may exit
  CHECK(count<NotifyFlushed>(flushed) == 1);
  CHECK(m.handle(FlushTimeout{}, 2'700).empty());
}

TEST_CASE("gate machine: a deferred Next preload starts when the gate opens, then the late flush") {
  auto s = handoff_settings();
  s.background_pending = true;
  auto m = warming_handoff(s);
  auto deferred = m.handle(HookPreload{HookPreload::State::kDeferred, 0, 0, {}}, 400);
  REQUIRE(phase_mark(deferred, "next-preload-deferred") != nullptr);
  CHECK(find<SendPreload>(deferred) == nullptr);  // the gate is still shut
  m.handle(WarmPath{path_status("/", WarmState::kOk, 200, false)}, 900);
  m.handle(WarmPath{path_status("/about", WarmState::kOk, 200, false)}, 950);
  CHECK(count<SendPreload>(m.handle(WarmGateReleased{}, 960)) == 0);
  CHECK(count<SendPreload>(m.handle(HookFlushed{true, ""}, 980)) == 0);
  m.handle(HookOpened{}, 990);
  auto accepted = m.handle(PortAccepted{}, 1'000);
  CHECK(count<SendPreload>(accepted) == 1);
  REQUIRE(count<StartBackground>(accepted) == 1);
  CHECK(find<StartBackground>(accepted)->after_preload);  // routes render after the preload

  // Preload done first: the late flush waits for background warming, then goes once.
  auto preloaded = m.handle(HookPreload{HookPreload::State::kDone, 1000, 712, {}}, 1'800);
  CHECK(count<WorkerPreloaded>(preloaded) == 1);
  REQUIRE(phase_mark(preloaded, "next-preload-done") != nullptr);
  CHECK(phase_mark(preloaded, "next-preload-done")->detail == "1000 routes loaded in 712 ms");
  CHECK(find<SendLateFlush>(preloaded) == nullptr);
  auto bg_done = m.handle(BackgroundDone{3, 3, "done"}, 2'000);
  CHECK(count<SendLateFlush>(bg_done) == 1);
  CHECK(m.handle(HookPreload{HookPreload::State::kDone, 1000, 712, {}}, 2'100).empty());

  // Its answer is logged and opens nothing more.
  auto late = m.handle(HookFlushed{true, ""}, 2'200);
  CHECK(count<SendOpen>(late) == 0);
  CHECK(count<NotifyFlushed>(late) == 0);
  REQUIRE(log_at(late, Level::kDebug) != nullptr);
  CHECK(log_at(late, Level::kDebug)->text ==
        "node flushed its compile cache again after background warming");
  CHECK(m.handle(HookFlushed{true, ""}, 2'300).empty());
}

TEST_CASE("gate machine: background done first, the late flush waits for the deferred preload") {
  auto s = handoff_settings();
  s.background_pending = true;
  auto m = opening_handoff(s);
  m.handle(HookPreload{HookPreload::State::kDeferred, 0, 0, {}}, 990);
  m.handle(HookOpened{}, 990);
  CHECK(count<SendPreload>(m.handle(PortAccepted{}, 1'000)) == 1);
  CHECK(count<SendLateFlush>(m.handle(BackgroundDone{1, 1, "done"}, 1'500)) == 0);
  CHECK(count<SendLateFlush>(m.handle(HookPreload{HookPreload::State::kDone, 10, 5, {}}, 1'600)) ==
        1);
}

TEST_CASE("gate machine: a preload deferred after the gate opened starts at once") {
  auto m = opening_handoff();
  m.handle(HookOpened{}, 990);
  m.handle(PortAccepted{}, 1'000);
  auto deferred = m.handle(HookPreload{HookPreload::State::kDeferred, 0, 0, {}}, 1'100);
  CHECK(count<SendPreload>(deferred) == 1);
  CHECK(m.handle(HookPreload{HookPreload::State::kDeferred, 0, 0, {}}, 1'200).empty());
  // Without background warming the preload alone earns the late flush.
  auto bg = m.handle(BackgroundDone{0, 0, "done"}, 1'250);
  CHECK(count<SendLateFlush>(bg) == 0);
  CHECK(count<SendLateFlush>(m.handle(HookPreload{HookPreload::State::kDone, 4, 3, {}}, 1'300)) ==
        1);
}

TEST_CASE("gate machine: an ungated app still gets its deferred preload once PORT accepts") {
  auto m = warming_handoff();
  m.handle(HookPreload{HookPreload::State::kDeferred, 0, 0, {}}, 350);
  m.handle(HookUngated{"a cluster primary listens on PORT for its workers"}, 400);
  auto accepted = m.handle(PortAccepted{}, 500);
  CHECK(count<SendPreload>(accepted) == 1);
  CHECK(find<StartBackground>(accepted) == nullptr);
}

TEST_CASE("gate machine: without a deferred preload or background warming there is no late flush") {
  auto m = opening_handoff();
  m.handle(HookOpened{}, 990);
  auto accepted = m.handle(PortAccepted{}, 1'000);
  CHECK(find<SendPreload>(accepted) == nullptr);
  CHECK(find<SendLateFlush>(m.handle(BackgroundDone{0, 0, "done"}, 1'100)) == nullptr);
  // A "done" nobody deferred marks nothing.
  CHECK(m.handle(HookPreload{HookPreload::State::kDone, 4, 3, {}}, 1'200).empty());
}

TEST_CASE("gate machine: a Next version whose preload cannot be deferred is said once, as info") {
  auto m = warming_handoff();
  auto said = m.handle(
      HookPreload{HookPreload::State::kUnsupported, 0, 0, "no unstable_preloadEntries"}, 350);
  REQUIRE(log_at(said, Level::kInfo) != nullptr);
  CHECK(log_at(said, Level::kInfo)->text ==
        "Next's preloadEntriesOnStart cannot be deferred in this Next.js version (no "
        "unstable_preloadEntries); it runs as Next ships it");
}
