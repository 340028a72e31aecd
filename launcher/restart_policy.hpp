#pragma once
#include <chrono>
#include <deque>
#include <string>

#include "launcher/config.hpp"

namespace knext {

// Whether an exited app is started again in place, and after how long. Pure: the caller passes
// the time of each exit, so tests drive it with a fake clock.
class RestartPolicy {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  // Delay before the first restart in a window; doubles with each restart still in the window.
  static constexpr std::chrono::milliseconds kFirstBackoff{200};
  static constexpr std::chrono::milliseconds kMaxBackoff{10'000};

  struct Decision {
    bool restart = false;
    std::chrono::milliseconds delay{0};
    std::string reason;  // why not, or which restart this is
  };

  RestartPolicy(RestartMode mode, int max_restarts, std::chrono::milliseconds window);

  // The app exited with `exit_code` (128+N for signal N) at `now`; `stopping`: the launcher
  // asked it to stop (SIGTERM, warm-up failure), which is never restarted.
  Decision on_exit(int exit_code, bool stopping, TimePoint now);

 private:
  RestartMode mode_;
  int max_;
  std::chrono::milliseconds window_;
  std::deque<TimePoint> restarts_;  // within the window, oldest first
};

}  // namespace knext
