#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/timeline.hpp"

namespace knext {

enum class WarmState { kPending, kWarming, kOk, kFailed };

struct WarmPathStatus {
  std::string path;
  WarmState state = WarmState::kPending;
  long last_status = 0;  // last HTTP status seen (0: none yet)
  int attempts = 0;
  double done_ms = 0;       // ms since launcher exec when it answered 2xx/3xx (or gave up)
  std::string last_error;   // transport error of the last attempt, if any
  bool background = false;  // warmed after the gate opened
  double first_ms = 0;      // latency of the first 2xx/3xx answer (0: none yet)
  double last_ms = 0;       // latency of the latest 2xx/3xx answer
  // Why repeats stopped: converged, capped, no-gain, not-paying, waiting (the app's own wait),
  // definitive (a 4xx), server-error, timeout, budget; empty while repeating.
  std::string result;
  bool holds_gate = true;  // a critical path the gate still waits for
};

// Warming the non-critical routes after the gate opened (--warm-path auto).
struct BackgroundWarm {
  std::string state = "off";  // off | pending | running | done
  size_t total = 0;
  size_t warmed = 0;
  std::string reason;     // why it ended: done, budget, stopped
  double started_ms = 0;  // since the launcher's exec
  double done_ms = 0;
};

// What the admin endpoint reports; owned by the run loop, read on the same (loop) thread.
struct LaunchState {
  const Timeline* timeline = nullptr;
  std::string gate_mode;  // "handoff", "proxy" or "none"
  bool child_running = false;
  bool gate_open = false;
  int restarts = 0;
  std::vector<WarmPathStatus> warm_paths;
  BackgroundWarm background;
  std::string compile_cache_dir;       // NODE_COMPILE_CACHE given to node; empty: none
  uint64_t compile_cache_entries = 0;  // on disk after the last flush
  uint64_t compile_cache_bytes = 0;
};

}  // namespace knext
