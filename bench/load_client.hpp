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
  // Once the last request has gone out (its connection is up and the request is being sent),
  // on_stop runs with the requests still in flight. Without it no stop comes.
  bool stop_when_all_sent = false;
  std::chrono::milliseconds request_timeout{30'000};
  // A request held while the server starts: a connect refused before `hold_until` (and before
  // that connection's first 2xx) is retried after `hold_retry`.
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

// Where the slowest 2xx request's time went (libcurl's timers, from its last attempt).
struct SlowestRequest {
  std::string path;
  size_t connection = 0;     // which of the `concurrency` connections carried it
  double ms = 0;             // from its first connect attempt, as in latencies_ms
  double started_ms = 0;     // its first connect attempt, from the run's start
  long held_retries = 0;     // refused connects retried before it got through
  long new_connections = 0;  // connections its last attempt opened (0: keep-alive reuse)
  double connect_ms = 0;     // of the last attempt: until the TCP connect completed
  double first_byte_ms = 0;  // of the last attempt: until the first response byte
};

struct ConnectionStats {
  long requests = 0;        // 2xx requests it carried
  double max_ms = 0;        // the slowest of them
  double first_ms = 0;      // its first 2xx (held through the cold start)
  double max_later_ms = 0;  // the slowest after its first
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
  std::vector<SteadyClock::time_point> ok_done;  // when each 2xx request finished
  std::vector<ConnectionStats> connections;
  SlowestRequest slowest;
  SteadyClock::time_point started;  // the run's start: the first connect attempts
  std::optional<SteadyClock::time_point> first_ok;
  SteadyClock::time_point stop_time;
  SteadyClock::time_point last_finish;
};

// Drives the plan on one thread with libcurl's multi interface. Fails when libcurl cannot be
// used or nothing answered with a 2xx before `hold_until`.
Expected<LoadResult> run_load(const LoadPlan& plan, const LoadHooks& hooks);

}  // namespace knext::bench
