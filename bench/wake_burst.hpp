#pragma once
#include <string>
#include <vector>

#include "bench/server_run.hpp"
#include "common/expected.hpp"

namespace knext::bench {

constexpr int kWakeBurstRequests = 50;

struct WakeBurst {
  long requests = 0;
  long ok = 0;                  // 2xx
  std::vector<double> done_ms;  // each 2xx's completion, from spawn
  std::string first_failure;    // of a request that did not get a 2xx
};

// Scale from zero as the activator sees it: starts the server with `requests` GETs (round-robin
// over request.paths) already trying it, one connection each, a refused connect retried every
// 5 ms; every request is held until it is answered or request.timeout_ms after spawn.
Expected<WakeBurst> measure_wake_burst(const ServerRunRequest& request,
                                       int requests = kWakeBurstRequests);

}  // namespace knext::bench
