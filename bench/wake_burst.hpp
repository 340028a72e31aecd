#pragma once
#include <chrono>
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

// Scale from zero as Knative runs it: the activator holds the requests in its own process while
// the pod's queue-proxy probes PORT with a TCP connect every 50 ms (knative.dev/serving
// pkg/queue/readiness/probe.go, retryInterval); the first probe that connects releases all
// `requests` GETs at once (round-robin over request.paths, one connection each; a refused
// connect is still retried every 5 ms until request.timeout_ms after spawn). The activator's own
// probe of the queue-proxy (every 200 ms) is not modelled: it adds the same to every variant.
constexpr auto kQueueProxyProbeInterval = std::chrono::milliseconds(50);

Expected<WakeBurst> measure_wake_burst(const ServerRunRequest& request,
                                       int requests = kWakeBurstRequests);

}  // namespace knext::bench
