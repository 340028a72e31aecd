#include "launcher/startup_gate.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "common/clock.hpp"
#include "launcher/log.hpp"

namespace knext {
namespace {
// The launcher's own exit code when it stops the app because warm-up failed (--warm-fail=exit)
// or the server never listened.
constexpr int kStartupFailedExit = 1;
constexpr uint64_t kFlushWaitMs = 2'000;
}  // namespace

StartupGate::StartupGate(uv_loop_t* loop, const Config& config, Timeline& timeline,
                         LaunchState& state, Supervisor& supervisor)
    : loop_(loop),
      config_(config),
      timeline_(timeline),
      state_(state),
      supervisor_(supervisor),
      deadline_timer_(loop),
      flush_timer_(loop),
      port_check_(loop),
      deadline_(std::chrono::steady_clock::now() + config.warm_timeout) {}

StartupGate::~StartupGate() = default;

void StartupGate::prepare_warmup() {
  for (const auto& path : effective_warm_paths(config_)) {
    WarmPathStatus status;
    status.path = path;
    state_.warm_paths.push_back(std::move(status));
  }
  // The worker loads libcurl while node boots, off the critical path.
  warmup_ = std::make_unique<WarmUp>(loop_, effective_warm_paths(config_));
  warmup_->run_as(config_.user);
  if (auto prepared = warmup_->prepare(); !prepared) {
    log::warn(prepared.error().message + "; warm paths will be reported as failed");
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
  if (m.type == "hello") {
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
      open_when_port_accepts("not gated");
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
    open_when_port_accepts("not gated: " + m.message);
  } else if (m.type == "opened") {
    open_when_port_accepts(fmt::format("public port {}", public_port_));
  } else if (m.type == "flushed") {
    flush_timer_.stop();
    if (m.ok) {
      log::debug("node flushed its compile cache");
    } else if (!m.message.empty()) {
      log::info("compile cache not flushed: " + m.message);
    }
    open_gate();
    if (on_flushed_) on_flushed_();
  } else if (m.type == "error") {
    last_hook_error_ = m.message;
    log::warn("hook: " + m.message);
  }
}

void StartupGate::open_when_port_accepts(const std::string& detail) {
  if (state_.gate_open || port_check_.running()) return;
  port_check_.start(
      public_host_, public_port_,
      [this, detail] {
        listening_ = true;
        deadline_timer_.stop();
        state_.gate_open = true;
        timeline_.mark("gate-open", detail);
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
  open_when_port_accepts("not gated: control channel closed");
}

void StartupGate::begin_warmup(const std::string& host, int port) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline_ - std::chrono::steady_clock::now());
  warmup_->start(
      host, port, left, config_.warm_repeat,
      [this](const WarmPathStatus& s) {
        for (auto& known : state_.warm_paths) {
          if (known.path != s.path) continue;
          known = s;
          known.done_ms = ms_since_start();
        }
        if (s.state == WarmState::kOk) {
          timeline_.mark("warm-path-done", fmt::format("{} -> {} after {} attempt(s)", s.path,
                                                       s.last_status, s.attempts));
        }
      },
      [this](bool all_ok) { on_warm_done(all_ok); });
}

void StartupGate::on_warm_done(bool all_ok) {
  if (!state_.child_running) return;
  if (all_ok) {
    flush_then_open();
    return;
  }
  std::string failures;
  for (const auto& s : state_.warm_paths) {
    if (s.state == WarmState::kOk) continue;
    failures +=
        fmt::format("{}{} ({})", failures.empty() ? "" : ", ", s.path,
                    s.last_status != 0 ? "HTTP " + std::to_string(s.last_status) : s.last_error);
  }
  bool never_answered = std::all_of(state_.warm_paths.begin(), state_.warm_paths.end(),
                                    [](const WarmPathStatus& s) { return s.last_status == 0; });
  if (proxy_ != nullptr && never_answered) {
    on_deadline();
    return;
  }
  if (config_.warm_fail == WarmFail::kExit) {
    supervisor_.request_shutdown("warm-up failed within " +
                                     std::to_string(config_.warm_timeout.count()) +
                                     "ms: " + failures + "; stopping (--warm-fail=exit)",
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
