#pragma once
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/expected.hpp"

namespace knext::bench {

// Requests that did not end with a 2xx, by why.
struct FailureCounts {
  long non_2xx = 0;  // a whole response, not 2xx
  long reset = 0;    // the connection was reset or closed before the whole response
  long timeout = 0;  // no whole response within the request timeout
  // A connect refused after the hold. For a request in flight at the stop: libcurl found its
  // keep-alive connection closed under it and the reconnect was refused.
  long refused = 0;
  long other = 0;
  long total() const { return non_2xx + reset + timeout + refused + other; }
};

struct LoadPlan {
  std::string base_url;            // http://127.0.0.1:PORT
  std::vector<std::string> paths;  // requested round-robin
  long requests = 0;
  int concurrency = 1;  // keep-alive connections, one request on each at a time
  // Once this many requests have finished, the idle connections get one more request each, then
  // on_stop runs with them in flight and no further request starts.
  long stop_after = 0;
  std::chrono::milliseconds request_timeout{30'000};
  // Like Knative's activator holding requests for a revision at zero: a connect refused before
  // `hold_until` (and before that connection's first 2xx) is retried after `hold_retry`.
  std::chrono::milliseconds hold_retry{5};
  SteadyClock::time_point hold_until;
};

struct LoadProgress {
  long finished = 0;
  long ok = 0;
  long failed = 0;
  long in_flight = 0;
  long held = 0;  // waiting to retry a refused connect
};

struct LoadHooks {
  std::function<void()> on_stop;
  std::function<void(const LoadProgress&)> on_tick;  // about once a second
  std::function<bool()> target_alive;  // polled every 50 ms; false: no new requests, finish up
};

struct LoadResult {
  long sent = 0;  // requests started (a held request counts once)
  long ok = 0;
  FailureCounts failed;  // requests not in flight at the stop
  FailureCounts lost;    // requests in flight at the stop that did not end with a 2xx
  std::string first_failure;
  bool stopped = false;      // the stop point was reached and on_stop ran
  bool target_gone = false;  // target_alive() turned false before the stop point
  long finished_at_stop = 0;
  long ok_at_stop = 0;
  long in_flight_at_stop = 0;
  std::vector<double> latencies_ms;  // of 2xx requests, from their first connect attempt
  std::optional<SteadyClock::time_point> first_ok;
  SteadyClock::time_point stop_time;
  SteadyClock::time_point last_finish;
};

// Drives the plan on one thread with libcurl's multi interface. Fails when libcurl cannot be
// used or nothing answered with a 2xx before `hold_until`.
Expected<LoadResult> run_load(const LoadPlan& plan, const LoadHooks& hooks);

}  // namespace knext::bench
