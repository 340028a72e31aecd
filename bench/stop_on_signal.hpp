#pragma once
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace knext::bench {

// SIGINT, SIGTERM or SIGHUP to the bench: every registered action runs, newest first (the
// servers it started, then the FUSE mount under them, then what it baked into the app), and the
// bench exits 128+N, leaving behind what its destructors would have cleaned on a normal exit.
void stop_on_signal();  // once, in main, before any child starts

// One action, registered for as long as this lives.
class OnStopSignal {
 public:
  OnStopSignal() = default;
  explicit OnStopSignal(std::function<void()> action);
  OnStopSignal(OnStopSignal&& other) noexcept;
  OnStopSignal& operator=(OnStopSignal&& other) noexcept;
  OnStopSignal(const OnStopSignal&) = delete;
  OnStopSignal& operator=(const OnStopSignal&) = delete;
  ~OnStopSignal();

 private:
  unsigned long id_ = 0;
};

// SIGTERM, then SIGKILL after `grace`: for an action that stops a child the bench started.
void terminate_pid(pid_t pid, std::chrono::milliseconds grace);

// A child the signal action stops, registered before it is spawned: a signal while it is being
// spawned waits for its pid instead of missing it (and one during the registration comes before
// the spawn, which then never happens). Construct, spawn, then spawned(pid) or failed().
class StopChildOnSignal {
 public:
  explicit StopChildOnSignal(std::chrono::milliseconds grace);
  void spawned(pid_t pid) { pid_->store(pid); }
  void failed() { pid_->store(-1); }

 private:
  std::shared_ptr<std::atomic<pid_t>> pid_;  // 0 while spawning
  OnStopSignal on_stop_;
};

}  // namespace knext::bench
