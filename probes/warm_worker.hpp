#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"
#include "probes/launch_state.hpp"

// Warm-up runs in a short-lived child process (`knext-launch --warm-worker PATH...`) so that
// libcurl and its TLS libraries (~10 MB resident) are never mapped into PID 1. The launcher
// starts it while node boots (libcurl loads meanwhile) and sends one line once the server
// listens: "<host> <port> <timeout_ms> <repeat>". The worker GETs every path in parallel,
// retrying until 2xx/3xx or the timeout, then sends repeat-1 more requests to it at once, and
// prints one result line per path as it finishes.
namespace knext {

inline constexpr std::string_view kWarmWorkerFlag = "--warm-worker";

int run_warm_worker(const std::vector<std::string>& paths);

std::string format_warm_result(const WarmPathStatus& status);
Expected<WarmPathStatus> parse_warm_result(std::string_view line);

}  // namespace knext
