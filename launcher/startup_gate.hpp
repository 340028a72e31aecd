#pragma once
#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "common/timeline.hpp"
#include "common/uv_handle.hpp"
#include "launcher/config.hpp"
#include "launcher/control_channel.hpp"
#include "launcher/launch_plan.hpp"
#include "launcher/port_check.hpp"
#include "launcher/supervisor.hpp"
#include "probes/gate/proxy_gate.hpp"
#include "probes/launch_state.hpp"
#include "probes/warm/warmup.hpp"

namespace knext {

// Holds readiness back until the warm paths answer: learns the server's internal address from
// the hook, warms it, asks node to flush its compile cache, then opens the public port.
class StartupGate {
 public:
  StartupGate(uv_loop_t* loop, const Config& config, const WarmUpPlan& warm, Timeline& timeline,
              LaunchState& state, Supervisor& supervisor);
  ~StartupGate();
  StartupGate(const StartupGate&) = delete;
  StartupGate& operator=(const StartupGate&) = delete;

  // Handoff: listens to the hook on `channel` (already spawned with the child's end); the app's
  // public port is `public_port`.
  void start_handoff(std::unique_ptr<ControlChannel> channel, int public_port);
  // Proxy: the child listens on 127.0.0.1:internal_port; `gate` holds PORT until warm.
  void start_proxy(ProxyGate& gate, int internal_port);
  void child_exited();
  // Called once node reports its compile cache flushed.
  void on_flushed(std::function<void()> callback) { on_flushed_ = std::move(callback); }
  // The flush ends the run (--prewarm): the public port stays closed.
  void keep_closed_after_flush() { open_after_flush_ = false; }

 private:
  void on_hook_message(const HookMessage& m);
  void on_channel_closed();
  void begin_warmup(const std::string& host, int port);
  void on_warm_done(bool all_ok);
  void on_warm_path(const WarmPathStatus& s);
  void start_background();
  void on_background_done(size_t warmed, size_t total, const std::string& reason);
  void flush_then_open();
  void open_gate();
  void on_deadline();
  void prepare_warmup();
  // The gate counts as open once a connect to the public port completes, not on the hook's word.
  void open_when_port_accepts(const std::string& detail, bool warmed = false);

  uv_loop_t* loop_;
  const Config& config_;
  const WarmUpPlan& warm_;
  Timeline& timeline_;
  LaunchState& state_;
  Supervisor& supervisor_;
  std::unique_ptr<ControlChannel> channel_;
  ProxyGate* proxy_ = nullptr;
  int internal_port_ = 0;
  std::unique_ptr<WarmUp> warmup_;
  Timer deadline_timer_;
  Timer flush_timer_;
  PortCheck port_check_;
  int public_port_ = 0;
  std::string public_host_;
  std::chrono::steady_clock::time_point deadline_;
  std::string last_hook_error_;
  bool listening_ = false;
  bool ungated_ = false;
  bool open_requested_ = false;
  bool background_started_ = false;
  bool open_after_flush_ = true;
  int node_pid_ = 0;  // from the hook's hello
  std::function<void()> on_flushed_;
};

}  // namespace knext
