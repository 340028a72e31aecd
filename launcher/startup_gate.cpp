#include "launcher/startup_gate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "common/clock.hpp"
#include "common/log.hpp"

namespace knext {
namespace {
// The launcher's own exit code when it stops the app because warm-up failed (--warm-fail=exit)
// or the server never listened.
constexpr int kStartupFailedExit = 1;
constexpr uint64_t kFlushWaitMs = 2'000;
}  // namespace

StartupGate::StartupGate(uv_loop_t* loop, const Config& config, const WarmUpPlan& warm,
                         Timeline& timeline, LaunchState& state, Supervisor& supervisor)
    : loop_(loop),
      config_(config),
      warm_(warm),
      timeline_(timeline),
      state_(state),
      supervisor_(supervisor),
      deadline_timer_(loop),
      flush_timer_(loop),
      port_check_(loop),
      deadline_(std::chrono::steady_clock::now() + config.warm_timeout) {}

StartupGate::~StartupGate() = default;

void StartupGate::prepare_warmup() {
  for (const auto& path : warm_.paths) {
    WarmPathStatus status;
    status.path = path;
    state_.warm_paths.push_back(std::move(status));
  }
  std::vector<std::string> args;
  if (warm_.auto_discover) {
    args.emplace_back("--auto");
    state_.background.state = "pending";
  }
  if (config_.warm_bake) args.emplace_back("--bake");
  for (const auto& glob : config_.warm_skip) {
    args.emplace_back("--skip");
    args.push_back(glob);
  }
  args.insert(args.end(), config_.warm_paths.begin(), config_.warm_paths.end());
  // The worker loads libcurl and reads the build's manifests while node boots.
  warmup_ = std::make_unique<WarmUp>(loop_, std::move(args));
  WarmUp::Callbacks callbacks;
  callbacks.on_path = [this](const WarmPathStatus& s) { on_warm_path(s); };
  callbacks.on_gate = [this] {
    for (auto& s : state_.warm_paths) {
      if (s.background || !s.holds_gate || s.state == WarmState::kOk) continue;
      s.state = WarmState::kFailed;  // never reported: the worker is gone
      s.holds_gate = false;
      if (s.last_error.empty()) s.last_error = "warm-up worker not running";
    }
    bool all_ok = std::none_of(
        state_.warm_paths.begin(), state_.warm_paths.end(),
        [](const WarmPathStatus& s) { return !s.background && s.state == WarmState::kFailed; });
    on_warm_done(all_ok);
  };
  callbacks.on_background_done = [this](size_t warmed, size_t total, const std::string& reason) {
    on_background_done(warmed, total, reason);
  };
  callbacks.on_log = [](const std::string& level, const std::string& text) {
    if (level == "warn") {
      log::warn(text);
    } else {
      log::info(text);
    }
  };
  warmup_->run_as(config_.user);
  warmup_->use_env(warm_.worker_env);
  if (auto prepared = warmup_->prepare(std::move(callbacks)); !prepared) {
    log::warn(prepared.error().message + "; warm paths will be reported as failed");
  }
}

void StartupGate::on_warm_path(const WarmPathStatus& s) {
  auto known = std::find_if(
      state_.warm_paths.begin(), state_.warm_paths.end(),
      [&](const WarmPathStatus& w) { return w.path == s.path && w.background == s.background; });
  if (known == state_.warm_paths.end()) {
    state_.warm_paths.push_back(s);
    known = state_.warm_paths.end() - 1;
    if (s.background) ++state_.background.total;
  }
  bool was_holding = known->holds_gate && known->state != WarmState::kPending;
  bool was_done = known->state == WarmState::kOk || known->state == WarmState::kFailed;
  double done_ms = known->done_ms;
  *known = s;
  known->done_ms = done_ms;
  bool done = s.state == WarmState::kOk || s.state == WarmState::kFailed;
  if ((done && !was_done) || (!s.holds_gate && was_holding)) known->done_ms = ms_since_start();
  if (s.background) {
    if (done && !was_done) ++state_.background.warmed;
    return;
  }
  if (s.state == WarmState::kFailed && !was_done && s.last_status != 0) {
    log::warn(fmt::format("warm path {} answered HTTP {} ({}); not retried", s.path, s.last_status,
                          s.result));
  }
  if (was_holding && !s.holds_gate && s.state != WarmState::kFailed) {
    timeline_.mark("warm-path-done",
                   fmt::format("{} -> {} after {} request(s), first {:.1f} ms, last {:.1f} ms, {}",
                               s.path, s.last_status, s.attempts, s.first_ms, s.last_ms, s.result));
  }
}

void StartupGate::start_handoff(std::unique_ptr<ControlChannel> channel, int public_port) {
  public_port_ = public_port;
  prepare_warmup();
  channel_ = std::move(channel);
  channel_->start([this](const HookMessage& m) { on_hook_message(m); },
                  [this] { on_channel_closed(); });
  deadline_timer_.start(static_cast<uint64_t>(config_.warm_timeout.count()), 0,
                        [this] { on_deadline(); });
}

void StartupGate::start_proxy(ProxyGate& gate, int internal_port) {
  proxy_ = &gate;
  internal_port_ = internal_port;
  prepare_warmup();
  // The worker retries refused connections until the server listens.
  begin_warmup("127.0.0.1", internal_port);
}

void StartupGate::on_hook_message(const HookMessage& m) {
  if (m.type == "busy" || m.type == "idle") {
    if (warmup_) warmup_->set_busy(m.type == "busy");
  } else if (m.type == "hello") {
    node_pid_ = m.pid;
    timeline_.mark("hook-loaded", "node " + m.node_version);
  } else if (m.type == "listening") {
    listening_ = true;
    public_host_ = m.public_host;
    if (!m.redirected) {
      // The hook fell back to the app's own listen on PORT: nothing is gated any more.
      log::warn(fmt::format(
          "hook could not hold the public port back ({}); port {} is open "
          "without warm-up",
          last_hook_error_.empty() ? "no reason given" : last_hook_error_, public_port_));
      deadline_timer_.stop();
      open_when_port_accepts("ungated");
      return;
    }
    timeline_.mark("server-listening-internal", fmt::format("{}:{}", m.host, m.port));
    begin_warmup(m.host, m.port);
  } else if (m.type == "ungated") {
    if (ungated_) return;
    ungated_ = true;
    listening_ = true;
    deadline_timer_.stop();
    if (warmup_) warmup_->cancel();
    log::warn(
        fmt::format("the gate cannot hold this app back ({}); running ungated: ready once "
                    "port {} accepts",
                    m.message.empty() ? "no reason given" : m.message, public_port_));
    open_when_port_accepts("ungated: " + m.message);
  } else if (m.type == "opened") {
    open_when_port_accepts(fmt::format("public port {}", public_port_), true);
  } else if (m.type == "flushed") {
    flush_timer_.stop();
    if (m.ok) {
      log::debug("node flushed its compile cache");
    } else if (!m.message.empty()) {
      log::info("compile cache not flushed: " + m.message);
    }
    // --prewarm stops the app once flushed: its PORT is never opened, so no gate-open either,
    // and the worker is told there is no background warming, so it exits before node does.
    if (open_after_flush_) {
      open_gate();
    } else if (warmup_) {
      warmup_->start_background(std::chrono::milliseconds(0));
    }
    if (on_flushed_) on_flushed_();
  } else if (m.type == "error") {
    last_hook_error_ = m.message;
    log::warn("hook: " + m.message);
  }
}

void StartupGate::open_when_port_accepts(const std::string& detail, bool warmed) {
  if (state_.gate_open || port_check_.running()) return;
  port_check_.start(
      public_host_, public_port_,
      [this, detail, warmed] {
        listening_ = true;
        deadline_timer_.stop();
        state_.gate_open = true;
        timeline_.mark("gate-open", detail);
        if (warmed) start_background();
      },
      [this](const std::string& error) {
        log::warn(
            fmt::format("port {} does not accept connections yet ({}); not ready until it "
                        "does",
                        public_port_, error));
      });
}

void StartupGate::on_channel_closed() {
  if (warmup_) warmup_->cancel();
  // Node exiting closes the channel too; only an early close of a running app is news.
  if (state_.gate_open || !state_.child_running || supervisor_.shutting_down()) return;
  log::warn(
      "the node hook's control channel closed before the gate opened; the hook fails "
      "open, so the app listens on PORT without warm-up: ready once PORT accepts");
  open_when_port_accepts("ungated: control channel closed");
}

void StartupGate::begin_warmup(const std::string& host, int port) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline_ - std::chrono::steady_clock::now());
  pid_t node = node_pid_ > 0 ? node_pid_ : supervisor_.child_pid();
  warmup_->start(host, port, left, config_.warm_repeat, node);
}

// After the gate opened: the hook reports user requests in flight (busy/idle) while the worker
// warms the other routes one at a time, so a user waits at most for one of those renders.
void StartupGate::start_background() {
  if (background_started_ || !warmup_) return;
  background_started_ = true;
  auto budget = config_.warm_background_budget;
  if (state_.background.state != "pending") budget = std::chrono::milliseconds(0);
  if (!channel_ && budget.count() > 0 && state_.background.state == "pending") {
    log::info("background warming needs the handoff gate to see user requests; it is off");
    budget = std::chrono::milliseconds(0);
  }
  if (budget.count() == 0) {
    if (state_.background.state == "pending") state_.background.state = "off";
    warmup_->start_background(budget);
    return;
  }
  state_.background.state = "running";
  state_.background.started_ms = ms_since_start();
  channel_->send(R"({"type":"watch","on":true})");
  warmup_->start_background(budget);
}

void StartupGate::on_background_done(size_t warmed, size_t total, const std::string& reason) {
  if (channel_) channel_->send(R"({"type":"watch","on":false})");
  if (state_.background.state == "off") return;
  state_.background.state = "done";
  state_.background.reason = reason;
  state_.background.done_ms = ms_since_start();
  timeline_.mark("background-warm-done", fmt::format("{} of {} routes, {}", warmed, total, reason));
}

void StartupGate::on_warm_done(bool all_ok) {
  if (!state_.child_running) return;
  if (all_ok) {
    flush_then_open();
    return;
  }
  std::string failures;
  for (const auto& s : state_.warm_paths) {
    if (s.background || s.state != WarmState::kFailed) continue;
    failures +=
        fmt::format("{}{} ({})", failures.empty() ? "" : ", ", s.path,
                    s.last_status != 0 ? "HTTP " + std::to_string(s.last_status) : s.last_error);
  }
  bool never_answered =
      std::all_of(state_.warm_paths.begin(), state_.warm_paths.end(),
                  [](const WarmPathStatus& s) { return s.background || s.last_status == 0; });
  if (proxy_ != nullptr && never_answered) {
    on_deadline();
    return;
  }
  if (config_.warm_fail == WarmFail::kExit) {
    supervisor_.request_shutdown("warm-up failed: " + failures + "; stopping (--warm-fail=exit)",
                                 kStartupFailedExit);
    return;
  }
  log::warn("warm-up failed: " + failures + "; opening the gate anyway (--warm-fail=open)");
  flush_then_open();
}

// Node writes its compile cache (and the hook its post-warm cache) synchronously: done before
// the gate opens, that pause never lands on a user's request. A hook that does not answer
// within kFlushWait does not hold the gate.
void StartupGate::flush_then_open() {
  if (!channel_) {
    open_gate();
    return;
  }
  channel_->send(R"({"type":"flush"})");
  flush_timer_.start(kFlushWaitMs, 0, [this] {
    log::warn("node did not confirm the compile-cache flush; opening the gate anyway");
    open_gate();
  });
}

void StartupGate::open_gate() {
  if (open_requested_) return;
  open_requested_ = true;
  if (channel_) channel_->send(R"({"type":"open"})");
  if (proxy_ != nullptr) {
    if (auto opened = proxy_->open("127.0.0.1", internal_port_); !opened) {
      supervisor_.request_shutdown("proxy gate: " + opened.error().message, kStartupFailedExit);
      return;
    }
    state_.gate_open = true;
    timeline_.mark("gate-open", fmt::format("public port {} (proxy)", proxy_->port()));
    start_background();
  }
}

void StartupGate::on_deadline() {
  if (listening_ || !state_.child_running || supervisor_.shutting_down()) return;
  supervisor_.request_shutdown(
      fmt::format("the server did not listen within --warm-timeout {}ms; stopping it",
                  config_.warm_timeout.count()),
      kStartupFailedExit);
}

void StartupGate::child_exited() {
  deadline_timer_.stop();
  port_check_.stop();
  if (warmup_) warmup_->cancel();
}

}  // namespace knext
