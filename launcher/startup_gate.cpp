#include "launcher/startup_gate.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "probes/warm/warm_worker.hpp"

namespace knext {
namespace {

std::optional<gate::Event> hook_event(const HookMessage& m) {
  if (m.type == "busy" || m.type == "idle") return gate::HookBusy{m.type == "busy"};
  if (m.type == "hello") return gate::HookHello{m.pid, m.node_version};
  if (m.type == "listening") {
    return gate::HookListening{m.host, m.port, m.public_host, m.redirected};
  }
  if (m.type == "ungated") return gate::HookUngated{m.message};
  if (m.type == "opened") return gate::HookOpened{};
  if (m.type == "flushed") return gate::HookFlushed{m.ok, m.message};
  if (m.type == "error") return gate::HookError{m.message};
  if (m.type == "next-preload") {
    using State = gate::HookPreload::State;
    if (m.state == "deferred") return gate::HookPreload{State::kDeferred, 0, 0, {}};
    if (m.state == "done") return gate::HookPreload{State::kDone, m.pages, m.ms, {}};
    if (m.state == "unsupported") return gate::HookPreload{State::kUnsupported, 0, 0, m.message};
  }
  return std::nullopt;
}

}  // namespace

StartupGate::StartupGate(uv_loop_t* loop, const Config& config, const WarmUpPlan& warm,
                         Timeline& timeline, LaunchState& state, RequestShutdown request_shutdown)
    : loop_(loop),
      config_(config),
      warm_(warm),
      timeline_(timeline),
      state_(state),
      request_shutdown_(std::move(request_shutdown)),
      deadline_ms_(ms_since_start() + static_cast<double>(config.warm_timeout.count())),
      deadline_timer_(loop),
      flush_timer_(loop),
      port_check_(loop) {}

StartupGate::~StartupGate() = default;

gate::Settings StartupGate::settings(bool proxy, int public_port, int internal_port) const {
  gate::Settings s;
  s.proxy = proxy;
  s.public_port = public_port;
  s.internal_port = internal_port;
  s.warm_paths = warm_.paths;
  // The worker puts the most requested learned path first (warm_plan.hpp); /startup lists it so.
  if (learned_ && warm_.auto_discover && !warm_.explicit_paths && !learned_->paths().empty()) {
    const std::string& top = learned_->paths().front();
    std::erase(s.warm_paths, top);
    s.warm_paths.insert(s.warm_paths.begin(), top);
  }
  s.background_pending = warm_.auto_discover || (holds_first_only(proxy) && warm_.paths.size() > 1);
  s.open_after_flush = open_after_flush_;
  s.warm_timeout = config_.warm_timeout;
  s.deadline_ms = deadline_ms_;
  s.warm_repeat = config_.warm_repeat;
  s.exit_on_warm_fail = config_.warm_fail == WarmFail::kExit;
  s.background_budget = config_.warm_background_budget;
  return s;
}

// --warm-gate=first needs what warms the rest after the gate: the hook's busy/idle reports
// (handoff) and background time; --warm-fail=exit promises that every critical path answered.
bool StartupGate::holds_first_only(bool proxy) const {
  return config_.warm_gate == WarmGate::kFirst && !proxy && !config_.warm_bake &&
         config_.warm_fail != WarmFail::kExit && config_.warm_background_budget.count() > 0;
}

void StartupGate::prepare_warmup(bool auto_mode, bool first_only) {
  std::vector<std::string> args;
  if (auto_mode) args.emplace_back("--auto");
  if (first_only) args.emplace_back(std::string(kHoldFirstFlag));
  if (config_.warm_bake) args.emplace_back("--bake");
  // With exit, a server that has answered nothing is never let go as "waiting": it may be stuck.
  if (config_.warm_fail == WarmFail::kExit) args.emplace_back(std::string(kWaitNeedsAnswerFlag));
  for (const auto& glob : config_.warm_skip) {
    args.emplace_back("--skip");
    args.push_back(glob);
  }
  if (auto_mode && learned_) {
    for (const auto& path : learned_->paths()) {
      args.emplace_back(std::string(kLearnedFlag));
      args.push_back(path);
    }
  }
  args.insert(args.end(), config_.warm_paths.begin(), config_.warm_paths.end());
  // The worker loads libcurl and reads the build's manifests while node boots.
  warmup_ = std::make_unique<WarmUp>(loop_, std::move(args));
  WarmUp::Callbacks callbacks;
  callbacks.on_path = [this](const WarmPathStatus& s) { feed(gate::WarmPath{s}); };
  callbacks.on_gate = [this] { feed(gate::WarmGateReleased{}); };
  callbacks.on_background_done = [this](size_t warmed, size_t total, const std::string& reason) {
    feed(gate::BackgroundDone{warmed, total, reason});
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

void StartupGate::start_handoff(std::unique_ptr<ControlChannel> channel, int public_port,
                                pid_t child) {
  auto s = settings(false, public_port, 0);
  prepare_warmup(warm_.auto_discover, holds_first_only(false));
  machine_.emplace(std::move(s));
  channel_ = std::move(channel);
  channel_->start(
      [this](const HookMessage& m) {
        if (m.type == "traffic") {
          if (learned_) learned_->save(m.paths);
          return;
        }
        if (auto event = hook_event(m)) feed(std::move(*event));
      },
      [this] { feed(gate::ChannelClosed{}); });
  feed(gate::Started{child});
}

void StartupGate::start_proxy(ProxyGate& gate, int internal_port, pid_t child) {
  proxy_ = &gate;
  auto s = settings(true, gate.port(), internal_port);
  prepare_warmup(warm_.auto_discover, false);
  machine_.emplace(std::move(s));
  feed(gate::Started{child});
}

void StartupGate::child_exited() {
  feed(gate::ChildExited{});
}

void StartupGate::shutting_down() {
  feed(gate::ShuttingDown{});
}

void StartupGate::feed(gate::Event event) {
  if (!machine_) return;  // never started (no gate): nothing to decide
  pending_.push_back(std::move(event));
  if (feeding_) return;
  feeding_ = true;
  while (!pending_.empty()) {
    gate::Event next = std::move(pending_.front());
    pending_.pop_front();
    for (const auto& command : machine_->handle(next, ms_since_start())) carry_out(command);
    publish();
  }
  feeding_ = false;
}

// The one place the gate writes the run's shared state.
void StartupGate::publish() {
  const auto& report = machine_->report();
  state_.gate_open = report.gate_open;
  state_.background = report.background;
  if (report.paths_changed) {
    state_.warm_paths = report.warm_paths;
    machine_->paths_published();
  }
}

void StartupGate::carry_out(const gate::Command& command) {
  std::visit(
      [this](const auto& c) {
        using C = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<C, gate::StartWarmup>) {
          warmup_->start(c.host, c.port, c.time_left, c.repeat, c.node_pid);
        } else if constexpr (std::is_same_v<C, gate::CancelWarmup>) {
          if (warmup_) warmup_->cancel();
        } else if constexpr (std::is_same_v<C, gate::SetBusy>) {
          if (warmup_) warmup_->set_busy(c.busy);
        } else if constexpr (std::is_same_v<C, gate::CheckPort>) {
          port_check_.start(
              c.host, c.port, [this] { feed(gate::PortAccepted{}); },
              [this](const std::string& error) { feed(gate::PortCheckFailed{error}); });
        } else if constexpr (std::is_same_v<C, gate::StopPortCheck>) {
          port_check_.stop();
        } else if constexpr (std::is_same_v<C, gate::StartDeadline>) {
          deadline_timer_.start(static_cast<uint64_t>(c.after.count()), 0,
                                [this] { feed(gate::Deadline{}); });
        } else if constexpr (std::is_same_v<C, gate::StopDeadline>) {
          deadline_timer_.stop();
        } else if constexpr (std::is_same_v<C, gate::SendFlush>) {
          channel_->send(R"({"type":"flush"})");
          flush_timer_.start(static_cast<uint64_t>(c.wait.count()), 0,
                             [this] { feed(gate::FlushTimeout{}); });
        } else if constexpr (std::is_same_v<C, gate::StopFlushTimer>) {
          flush_timer_.stop();
        } else if constexpr (std::is_same_v<C, gate::SendOpen>) {
          channel_->send(R"({"type":"open"})");
        } else if constexpr (std::is_same_v<C, gate::OpenProxy>) {
          auto opened = proxy_->open("127.0.0.1", c.upstream_port);
          feed(gate::ProxyOpened{static_cast<bool>(opened), opened ? "" : opened.error().message,
                                 proxy_->port()});
        } else if constexpr (std::is_same_v<C, gate::StartBackground>) {
          warmup_->start_background(c.budget, c.after_preload);
        } else if constexpr (std::is_same_v<C, gate::WorkerPreloaded>) {
          if (warmup_) warmup_->preloaded();
        } else if constexpr (std::is_same_v<C, gate::SendWatch>) {
          if (channel_)
            channel_->send(c.on ? R"({"type":"watch","on":true})"
                                : R"({"type":"watch","on":false})");
        } else if constexpr (std::is_same_v<C, gate::SendPreload>) {
          if (channel_) channel_->send(R"({"type":"preload"})");
        } else if constexpr (std::is_same_v<C, gate::SendLateFlush>) {
          if (channel_) channel_->send(R"({"type":"flush","idle":true})");
          if (channel_ && learned_) channel_->send(R"({"type":"traffic"})");
        } else if constexpr (std::is_same_v<C, gate::RequestShutdown>) {
          request_shutdown_(c.reason, c.exit_code);
        } else if constexpr (std::is_same_v<C, gate::MarkPhase>) {
          timeline_.mark(c.name, c.detail);
        } else if constexpr (std::is_same_v<C, gate::Log>) {
          if (c.level == gate::Level::kWarn) {
            log::warn(c.text);
          } else if (c.level == gate::Level::kInfo) {
            log::info(c.text);
          } else {
            log::debug(c.text);
          }
        } else if constexpr (std::is_same_v<C, gate::NotifyFlushed>) {
          if (on_flushed_) on_flushed_();
        }
      },
      command);
}

}  // namespace knext
