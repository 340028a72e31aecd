#pragma once
#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/expected.hpp"
#include "common/spawn.hpp"
#include "common/timeline.hpp"
#include "common/uv_handle.hpp"
#include "launcher/init_process.hpp"

namespace knext {

struct SupervisorOptions {
  std::chrono::milliseconds grace{25'000};
  std::chrono::milliseconds leftover_grace{2'000};
  bool signal_group = false;
  InitRole role = InitRole::kPlainParent;
};

// Runs one main child as init: forwards signals, reaps everything, enforces the shutdown grace,
// clears leftover processes after the child is gone, and yields the exit code to report.
class Supervisor {
 public:
  Supervisor(uv_loop_t* loop, SupervisorOptions options, Timeline& timeline);
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Installs signal handling, then spawns. On failure the error's code is the exit code to use.
  Status start(const SpawnRequest& request);
  // Called once the child and its leftovers are gone, unless the launcher is stopping: a delay
  // means "start it again after this long" (on_restart then spawns with restart()); nothing
  // means exit with the child's status.
  using RestartDecider = std::function<std::optional<std::chrono::milliseconds>(int wait_status)>;
  void on_gone(RestartDecider decide, std::function<void()> on_restart) {
    decide_restart_ = std::move(decide);
    on_restart_ = std::move(on_restart);
  }
  // Spawns the next child after a restart was decided. A failure ends the launcher with the
  // error's code.
  Status restart(const SpawnRequest& request);
  bool restart_pending() const { return restart_timer_.active(); }
  // Runs the loop until the child and its leftovers are gone; returns the exit code.
  int wait();

  // Stops the child as a SIGTERM would, and makes the launcher exit with `exit_code`.
  void request_shutdown(const std::string& reason, int exit_code);
  // The same, as planned work rather than a failure (logged at info).
  void request_stop(const std::string& reason, int exit_code);
  void on_child_exit(std::function<void(int wait_status)> callback) {
    on_child_exit_ = std::move(callback);
  }
  // Called once, when a shutdown starts (a signal, request_shutdown or request_stop).
  void on_shutdown(std::function<void()> callback) { on_shutdown_ = std::move(callback); }

  pid_t child_pid() const { return child_; }
  bool shutting_down() const { return shutdown_started_.has_value(); }
  bool child_running() const { return child_ > 0 && !child_status_; }

 private:
  void on_signal(int signum);
  void on_sigchld();
  void on_child_exit(int wait_status);
  void on_grace_expired();
  void check_leftovers();
  void kill_leftovers();
  void all_gone();
  void finish();
  int send_to_child(int signum);
  std::chrono::milliseconds leftover_budget() const;

  uv_loop_t* loop_;
  SupervisorOptions options_;
  Timeline& timeline_;
  std::vector<UvHandle<uv_signal_t>> signal_handles_;
  Timer grace_timer_;
  Timer leftover_timer_;
  Timer leftover_poll_;
  mutable Timer restart_timer_;
  pid_t child_ = -1;
  std::optional<int> child_status_;
  std::optional<SteadyClock::time_point> shutdown_started_;
  bool grace_expired_ = false;
  bool killing_leftovers_ = false;
  bool done_ = false;
  std::optional<int> exit_override_;
  std::function<void(int)> on_child_exit_;
  std::function<void()> on_shutdown_;
  RestartDecider decide_restart_;
  std::function<void()> on_restart_;
};

}  // namespace knext
