#pragma once
#include <sys/types.h>
#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/timeline.hpp"
#include "common/uv_handle.hpp"
#include "launcher/config.hpp"
#include "launcher/control_channel.hpp"
#include "launcher/launch_plan.hpp"
#include "launcher/learned_paths.hpp"
#include "launcher/port_check.hpp"
#include "probes/gate/proxy_gate.hpp"
#include "probes/gate/startup_gate_machine.hpp"
#include "probes/launch_state.hpp"
#include "probes/warm/warmup.hpp"

namespace knext {

// Holds readiness back until the warm paths answer: learns the server's internal address from
// the hook, warms it, then opens the public port and asks node to flush its compile cache.
// The decisions are gate::StartupGateMachine's; this class feeds it events from the control
// channel, the warm-up worker, its timers and the port check, and carries out its commands.
// What /startup shows of the gate (warm paths, background warming, gate open) is written here
// only, from the machine's report.
class StartupGate {
 public:
  // How the gate stops the app (a failed start); the run passes it on to the supervisor.
  using RequestShutdown = std::function<void(const std::string& reason, int exit_code)>;

  StartupGate(uv_loop_t* loop, const Config& config, const WarmUpPlan& warm, Timeline& timeline,
              LaunchState& state, RequestShutdown request_shutdown);
  ~StartupGate();
  StartupGate(const StartupGate&) = delete;
  StartupGate& operator=(const StartupGate&) = delete;

  // Handoff: listens to the hook on `channel` (already spawned with the child's end); the app's
  // public port is `public_port`; `child` is the app's pid.
  void start_handoff(std::unique_ptr<ControlChannel> channel, int public_port, pid_t child);
  // Proxy: the child listens on 127.0.0.1:internal_port; `gate` holds PORT until warm.
  void start_proxy(ProxyGate& gate, int internal_port, pid_t child);
  void child_exited();
  void shutting_down();
  // Called once node reports its compile cache flushed.
  void on_flushed(std::function<void()> callback) { on_flushed_ = std::move(callback); }
  // The flush ends the run (--prewarm): the public port stays closed.
  void keep_closed_after_flush() { open_after_flush_ = false; }
  // --learn-paths: the record's paths go to the warm-up worker, the hook's counts into the
  // record. Before start_handoff/start_proxy; `learned` outlives the gate.
  void learn_from(LearnedPaths* learned) { learned_ = learned; }

 private:
  gate::Settings settings(bool proxy, int public_port, int internal_port) const;
  bool holds_first_only(bool proxy) const;
  void prepare_warmup(bool auto_mode, bool first_only);
  void feed(gate::Event event);
  void carry_out(const gate::Command& command);
  void publish();

  uv_loop_t* loop_;
  const Config& config_;
  const WarmUpPlan& warm_;
  Timeline& timeline_;
  LaunchState& state_;
  RequestShutdown request_shutdown_;
  double deadline_ms_;
  std::unique_ptr<ControlChannel> channel_;
  ProxyGate* proxy_ = nullptr;
  std::unique_ptr<WarmUp> warmup_;
  Timer deadline_timer_;
  Timer flush_timer_;
  PortCheck port_check_;
  std::optional<gate::StartupGateMachine> machine_;
  // Events raised while commands run (a callback inside a command) wait their turn here.
  std::deque<gate::Event> pending_;
  bool feeding_ = false;
  bool open_after_flush_ = true;
  std::function<void()> on_flushed_;
  LearnedPaths* learned_ = nullptr;
};

}  // namespace knext
