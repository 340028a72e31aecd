#include "probes/gate/startup_gate_machine.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace knext::gate {
namespace {

bool done(WarmState s) {
  return s == WarmState::kOk || s == WarmState::kFailed;
}

}  // namespace

StartupGateMachine::StartupGateMachine(Settings settings) : settings_(std::move(settings)) {}

Commands StartupGateMachine::handle(const Event& event, double now_ms) {
  Commands out;
  bool started = phase_ != Phase::kIdle;
  bool stopped = phase_ == Phase::kStopped;
  std::visit(
      [&](const auto& e) {
        using E = std::decay_t<decltype(e)>;
        // Before the start only the start counts; once stopped, only what ends the run.
        if constexpr (std::is_same_v<E, Started>) {
          if (!started) on(e, now_ms, out);
        } else if constexpr (std::is_same_v<E, ChildExited> || std::is_same_v<E, ShuttingDown>) {
          if (started) on(e, now_ms, out);
        } else {
          if (started && !stopped) on(e, now_ms, out);
        }
      },
      event);
  return out;
}

void StartupGateMachine::advance(Phase next) {
  if (next > phase_) phase_ = next;
}

void StartupGateMachine::on(const Started& e, double now_ms, Commands& out) {
  child_pid_ = e.child_pid;
  child_running_ = true;
  for (const auto& path : settings_.warm_paths) {
    WarmPathStatus status;
    status.path = path;
    report_.warm_paths.push_back(std::move(status));
  }
  report_.paths_changed = true;
  if (settings_.background_pending) report_.background.state = "pending";
  if (settings_.proxy) {
    // The worker retries refused connections until the server listens.
    begin_warmup("127.0.0.1", settings_.internal_port, now_ms, out);
    return;
  }
  advance(Phase::kListening);
  out.push_back(StartDeadline{settings_.warm_timeout});
}

void StartupGateMachine::on(const HookHello& e, double, Commands& out) {
  node_pid_ = e.pid;
  out.push_back(MarkPhase{"hook-loaded", "node " + e.node_version});
}

void StartupGateMachine::on(const HookListening& e, double now_ms, Commands& out) {
  if (listen_reported_) return;  // one server is gated; a repeat changes nothing
  listen_reported_ = true;
  listening_ = true;
  public_host_ = e.public_host;
  if (!e.redirected) {
    // The hook fell back to the app's own listen on PORT: nothing is gated any more.
    out.push_back(Log{Level::kWarn,
                      fmt::format("hook could not hold the public port back ({}); port {} is open "
                                  "without warm-up",
                                  last_hook_error_.empty() ? "no reason given" : last_hook_error_,
                                  settings_.public_port)});
    out.push_back(StopDeadline{});
    open_when_port_accepts("ungated", false, out);
    return;
  }
  out.push_back(MarkPhase{"server-listening-internal", fmt::format("{}:{}", e.host, e.port)});
  begin_warmup(e.host, e.port, now_ms, out);
}

void StartupGateMachine::on(const HookUngated& e, double, Commands& out) {
  if (ungated_) return;
  ungated_ = true;
  listening_ = true;
  out.push_back(StopDeadline{});
  out.push_back(CancelWarmup{});
  out.push_back(
      Log{Level::kWarn,
          fmt::format("the gate cannot hold this app back ({}); running ungated: "
                      "ready once port {} accepts",
                      e.message.empty() ? "no reason given" : e.message, settings_.public_port)});
  open_when_port_accepts("ungated: " + e.message, false, out);
}

void StartupGateMachine::on(const HookOpened&, double, Commands& out) {
  open_when_port_accepts(fmt::format("public port {}", settings_.public_port), true, out);
}

void StartupGateMachine::on(const HookFlushed& e, double, Commands& out) {
  if (late_flush_sent_ && flushed_ && !late_flushed_) {
    late_flushed_ = true;
    out.push_back(Log{e.ok ? Level::kDebug : Level::kInfo,
                      e.ok ? "node flushed its compile cache again after background warming"
                           : "compile cache not flushed after background warming: " + e.message});
    return;
  }
  // Counts once, and only as the answer to our flush: it is what opens the gate.
  if (!flush_sent_ || flushed_) return;
  flushed_ = true;
  out.push_back(StopFlushTimer{});
  if (e.ok) {
    out.push_back(Log{Level::kDebug, "node flushed its compile cache"});
  } else if (!e.message.empty()) {
    out.push_back(Log{Level::kInfo, "compile cache not flushed: " + e.message});
  }
  // --prewarm stops the app once flushed: its PORT is never opened, so no gate-open either,
  // and the worker is told there is no background warming, so it exits before node does.
  if (settings_.open_after_flush) {
    open_gate(out);
  } else if (!background_started_) {
    background_started_ = true;
    out.push_back(StartBackground{std::chrono::milliseconds(0)});
  }
  out.push_back(NotifyFlushed{});
}

void StartupGateMachine::on(const HookError& e, double, Commands& out) {
  last_hook_error_ = e.message;
  out.push_back(Log{Level::kWarn, "hook: " + e.message});
}

void StartupGateMachine::on(const HookBusy& e, double, Commands& out) {
  out.push_back(SetBusy{e.busy});
}

void StartupGateMachine::on(const HookPreload& e, double, Commands& out) {
  using State = HookPreload::State;
  if (e.state == State::kDeferred && !preload_deferred_) {
    preload_deferred_ = true;
    out.push_back(MarkPhase{"next-preload-deferred",
                            "Next's preloadEntriesOnStart runs after the gate opens"});
    if (report_.gate_open) start_preload(out);
  } else if (e.state == State::kDone && preload_deferred_ && !preload_done_) {
    preload_done_ = true;
    out.push_back(
        MarkPhase{"next-preload-done", fmt::format("{} routes loaded in {} ms", e.pages, e.ms)});
    if (background_started_) out.push_back(WorkerPreloaded{});
    late_flush_when_done(out);
  } else if (e.state == State::kUnsupported) {
    out.push_back(Log{Level::kInfo,
                      "Next's preloadEntriesOnStart cannot be deferred in this "
                      "Next.js version (" +
                          e.message + "); it runs as Next ships it"});
  }
}

void StartupGateMachine::start_preload(Commands& out) {
  if (preload_sent_) return;
  preload_sent_ = true;
  out.push_back(SendPreload{});
}

void StartupGateMachine::late_flush_when_done(Commands& out) {
  if (late_flush_sent_ || settings_.proxy || !flushed_) return;
  if (preload_deferred_ && !preload_done_) return;
  bool background_ran = report_.background.state == "done";
  if (report_.background.state == "running") return;
  if (!background_ran && !preload_done_) return;
  late_flush_sent_ = true;
  out.push_back(SendLateFlush{});
}

void StartupGateMachine::on(const ChannelClosed&, double, Commands& out) {
  out.push_back(CancelWarmup{});
  // Node exiting closes the channel too; only an early close of a running app is news.
  if (report_.gate_open || !child_running_ || shutting_down_) return;
  out.push_back(Log{Level::kWarn,
                    "the node hook's control channel closed before the gate opened; the hook "
                    "fails open, so the app listens on PORT without warm-up: ready once PORT "
                    "accepts"});
  open_when_port_accepts("ungated: control channel closed", false, out);
}

void StartupGateMachine::on(const WarmPath& e, double now_ms, Commands& out) {
  const WarmPathStatus& s = e.status;
  auto& paths = report_.warm_paths;
  report_.paths_changed = true;
  auto known = std::find_if(paths.begin(), paths.end(), [&](const WarmPathStatus& w) {
    return w.path == s.path && w.background == s.background;
  });
  if (known == paths.end()) {
    paths.push_back(s);
    known = paths.end() - 1;
    if (s.background) ++report_.background.total;
  }
  bool was_holding = known->holds_gate && known->state != WarmState::kPending;
  bool was_done = done(known->state);
  double done_ms = known->done_ms;
  *known = s;
  known->done_ms = done_ms;
  bool is_done = done(s.state);
  if ((is_done && !was_done) || (!s.holds_gate && was_holding)) known->done_ms = now_ms;
  if (s.background) {
    if (is_done && !was_done) ++report_.background.warmed;
    return;
  }
  if (s.state == WarmState::kFailed && !was_done && s.last_status != 0) {
    out.push_back(Log{Level::kWarn, fmt::format("warm path {} answered HTTP {} ({}); not retried",
                                                s.path, s.last_status, s.result)});
  }
  // A deferred critical path (--warm-gate=first) is done after the gate opened. A path that let
  // the gate go before (left running as waiting) has its done time and was marked then.
  bool deferred_done = report_.gate_open && is_done && !was_done && done_ms == 0;
  if (((was_holding && !s.holds_gate) || deferred_done) && s.state != WarmState::kFailed) {
    out.push_back(
        MarkPhase{"warm-path-done",
                  fmt::format("{} -> {} after {} request(s), first {:.1f} ms, last {:.1f} ms, {}{}",
                              s.path, s.last_status, s.attempts, s.first_ms, s.last_ms, s.result,
                              deferred_done ? ", after the gate" : "")});
  }
}

void StartupGateMachine::on(const WarmGateReleased&, double, Commands& out) {
  if (warm_released_) return;
  warm_released_ = true;
  for (auto& s : report_.warm_paths) {
    if (s.background || !s.holds_gate || s.state == WarmState::kOk) continue;
    s.state = WarmState::kFailed;  // never reported: the worker is gone
    s.holds_gate = false;
    if (s.last_error.empty()) s.last_error = "warm-up worker not running";
    report_.paths_changed = true;
  }
  bool all_ok = std::none_of(
      report_.warm_paths.begin(), report_.warm_paths.end(),
      [](const WarmPathStatus& s) { return !s.background && s.state == WarmState::kFailed; });
  warm_done(all_ok, out);
}

void StartupGateMachine::warm_done(bool all_ok, Commands& out) {
  if (!child_running_) return;
  if (all_ok) {
    flush_then_open(out);
    return;
  }
  std::string failures;
  for (const auto& s : report_.warm_paths) {
    if (s.background || s.state != WarmState::kFailed) continue;
    failures +=
        fmt::format("{}{} ({})", failures.empty() ? "" : ", ", s.path,
                    s.last_status != 0 ? "HTTP " + std::to_string(s.last_status) : s.last_error);
  }
  bool never_answered =
      std::all_of(report_.warm_paths.begin(), report_.warm_paths.end(),
                  [](const WarmPathStatus& s) { return s.background || s.last_status == 0; });
  if (settings_.proxy && never_answered) {
    stop_for_no_listen(out);
    return;
  }
  if (settings_.exit_on_warm_fail) {
    stop(RequestShutdown{"warm-up failed: " + failures + "; stopping (--warm-fail=exit)",
                         kStartupFailedExit},
         out);
    return;
  }
  out.push_back(Log{Level::kWarn, "warm-up failed: " + failures +
                                      "; opening the gate anyway (--warm-fail=open)"});
  flush_then_open(out);
}

void StartupGateMachine::on(const BackgroundDone& e, double now_ms, Commands& out) {
  if (!settings_.proxy) out.push_back(SendWatch{false});
  auto& bg = report_.background;
  if (bg.state == "off") return;
  bg.state = "done";
  bg.reason = e.reason;
  bg.done_ms = now_ms;
  out.push_back(MarkPhase{"background-warm-done",
                          fmt::format("{} of {} routes, {}", e.warmed, e.total, e.reason)});
  late_flush_when_done(out);
}

void StartupGateMachine::on(const PortAccepted&, double now_ms, Commands& out) {
  if (!checking_port_) return;
  checking_port_ = false;
  listening_ = true;
  out.push_back(StopDeadline{});
  report_.gate_open = true;
  advance(Phase::kOpen);
  out.push_back(MarkPhase{"gate-open", open_detail_});
  if (open_warmed_) start_background(now_ms, out);
  if (preload_deferred_) start_preload(out);
}

void StartupGateMachine::on(const PortCheckFailed& e, double, Commands& out) {
  if (!checking_port_) return;
  out.push_back(Log{Level::kWarn, fmt::format("port {} does not accept connections yet ({}); not "
                                              "ready until it does",
                                              settings_.public_port, e.error)});
}

void StartupGateMachine::on(const ProxyOpened& e, double now_ms, Commands& out) {
  if (!settings_.proxy || !open_requested_ || report_.gate_open) return;
  if (!e.ok) {
    stop(RequestShutdown{"proxy gate: " + e.error, kStartupFailedExit}, out);
    return;
  }
  report_.gate_open = true;
  advance(Phase::kOpen);
  out.push_back(MarkPhase{"gate-open", fmt::format("public port {} (proxy)", e.port)});
  start_background(now_ms, out);
}

void StartupGateMachine::on(const FlushTimeout&, double, Commands& out) {
  if (!flush_sent_ || flushed_) return;
  out.push_back(
      Log{Level::kWarn, "node did not confirm the compile-cache flush; opening the gate anyway"});
  open_gate(out);
}

void StartupGateMachine::on(const Deadline&, double, Commands& out) {
  stop_for_no_listen(out);
}

void StartupGateMachine::on(const ChildExited&, double, Commands& out) {
  child_running_ = false;
  // PORT closes with node (handoff); the proxy stops accepting.
  report_.gate_open = false;
  checking_port_ = false;
  phase_ = Phase::kStopped;
  out.push_back(StopDeadline{});
  out.push_back(StopPortCheck{});
  out.push_back(CancelWarmup{});
}

void StartupGateMachine::on(const ShuttingDown&, double, Commands&) {
  shutting_down_ = true;
}

void StartupGateMachine::begin_warmup(const std::string& host, int port, double now_ms,
                                      Commands& out) {
  advance(Phase::kWarming);
  auto left = std::chrono::milliseconds(static_cast<long long>(settings_.deadline_ms - now_ms));
  out.push_back(
      StartWarmup{host, port, left, settings_.warm_repeat, node_pid_ > 0 ? node_pid_ : child_pid_});
}

// Node writes its compile cache (and the hook its post-warm cache) synchronously: done before
// the gate opens, that pause never lands on a user's request. A hook that does not answer
// within kFlushWait does not hold the gate.
void StartupGateMachine::flush_then_open(Commands& out) {
  if (settings_.proxy) {
    open_gate(out);
    return;
  }
  if (flush_sent_) return;
  flush_sent_ = true;
  advance(Phase::kFlushing);
  out.push_back(SendFlush{kFlushWait});
}

void StartupGateMachine::open_gate(Commands& out) {
  if (open_requested_) return;
  open_requested_ = true;
  advance(Phase::kOpening);
  if (settings_.proxy) {
    out.push_back(OpenProxy{settings_.internal_port});
  } else {
    out.push_back(SendOpen{});
  }
}

// The gate counts as open once a connect to the public port completes, not on the hook's word.
void StartupGateMachine::open_when_port_accepts(std::string detail, bool warmed, Commands& out) {
  if (report_.gate_open || checking_port_) return;
  checking_port_ = true;
  open_detail_ = std::move(detail);
  open_warmed_ = warmed;
  advance(Phase::kOpening);
  out.push_back(CheckPort{public_host_, settings_.public_port});
}

// After the gate opened: the hook reports user requests in flight (busy/idle) while the worker
// warms the other routes one at a time, so a user waits at most for one of those renders.
void StartupGateMachine::start_background(double now_ms, Commands& out) {
  if (background_started_) return;
  background_started_ = true;
  auto& bg = report_.background;
  auto budget = settings_.background_budget;
  if (bg.state != "pending") budget = std::chrono::milliseconds(0);
  if (settings_.proxy && budget.count() > 0) {
    out.push_back(Log{Level::kInfo,
                      "background warming needs the handoff gate to see user requests; it is off"});
    budget = std::chrono::milliseconds(0);
  }
  if (budget.count() == 0) {
    if (bg.state == "pending") bg.state = "off";
    out.push_back(StartBackground{budget});
    return;
  }
  bg.state = "running";
  bg.started_ms = now_ms;
  out.push_back(SendWatch{true});
  out.push_back(StartBackground{budget, preload_deferred_ && !preload_done_});
}

void StartupGateMachine::stop_for_no_listen(Commands& out) {
  if (listening_ || !child_running_ || shutting_down_) return;
  stop(RequestShutdown{fmt::format("the server did not listen within --warm-timeout {}ms; "
                                   "stopping it",
                                   settings_.warm_timeout.count()),
                       kStartupFailedExit},
       out);
}

void StartupGateMachine::stop(RequestShutdown request, Commands& out) {
  phase_ = Phase::kStopped;
  out.push_back(std::move(request));
}

}  // namespace knext::gate
