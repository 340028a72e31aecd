#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "launcher/timeline.hpp"

namespace knext {

enum class WarmState { kPending, kOk, kFailed };

struct WarmPathStatus {
  std::string path;
  WarmState state = WarmState::kPending;
  long last_status = 0;  // last HTTP status seen (0: none yet)
  int attempts = 0;
  double done_ms = 0;      // ms since launcher exec when it answered 2xx/3xx (or gave up)
  std::string last_error;  // transport error of the last attempt, if any
};

// What the admin endpoint reports; owned by the run loop, read on the same (loop) thread.
struct LaunchState {
  const Timeline* timeline = nullptr;
  std::string gate_mode;  // "handoff", "proxy" or "none"
  bool child_running = false;
  bool gate_open = false;
  int restarts = 0;
  std::vector<WarmPathStatus> warm_paths;
  std::string compile_cache_dir;  // NODE_COMPILE_CACHE given to node; empty: none
  uint64_t compile_cache_entries = 0;  // on disk after the last flush
  uint64_t compile_cache_bytes = 0;
};

}  // namespace knext
