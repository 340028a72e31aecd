#include "launcher/restart_policy.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace knext {

RestartPolicy::RestartPolicy(RestartMode mode, int max_restarts, std::chrono::milliseconds window)
    : mode_(mode), max_(max_restarts), window_(window) {}

RestartPolicy::Decision RestartPolicy::on_exit(int exit_code, bool stopping, TimePoint now) {
  Decision d;
  if (mode_ == RestartMode::kNever) return d;
  if (stopping) {
    d.reason = "the launcher was stopping it";
    return d;
  }
  if (exit_code == 0) {
    d.reason = "it exited 0 (--restart=on-failure)";
    return d;
  }
  while (!restarts_.empty() && now - restarts_.front() >= window_) restarts_.pop_front();
  int recent = static_cast<int>(restarts_.size());
  if (recent >= max_) {
    d.reason = fmt::format("{} restart(s) within --restart-window {}ms already (--restart-max {})",
                           recent, window_.count(), max_);
    return d;
  }
  auto delay = kFirstBackoff * (1LL << std::min(recent, 16));
  d.delay = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(delay), kMaxBackoff);
  d.restart = true;
  d.reason = fmt::format("restart {} of {} within --restart-window {}ms", recent + 1, max_,
                         window_.count());
  restarts_.push_back(now);
  return d;
}

}  // namespace knext
