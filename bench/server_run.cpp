#include "bench/server_run.hpp"

#include <fmt/format.h>

#include <chrono>
#include <future>
#include <optional>
#include <thread>

#include "bench/process_tree.hpp"
#include "bench/server_process.hpp"
#include "bench/stats.hpp"
#include "common/clock.hpp"
#include "common/exit_status.hpp"
#include "probes/http/curl_api.hpp"

namespace knext::bench {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(5);

struct FirstGet {
  Expected<HttpResponse> response;
  double at_ms;  // completed, from spawn
};

// One GET's latency and status.
Expected<std::pair<double, long>> timed_get(const std::string& url, long timeout_ms) {
  auto t1 = SteadyClock::now();
  auto response = http_get(url, timeout_ms);
  if (!response) return response.error();
  return std::pair{ms_between(t1, SteadyClock::now()), response->status};
}

}  // namespace

Expected<ServerRunResult> measure_server_run(const ServerRunRequest& request) {
  auto started = ServerProcess::start(request);
  if (!started) return started.error();
  ServerProcess& server = *started;
  const int port = server.port();
  const auto t0 = server.spawned();
  ServerRunResult result;
  if (auto open = server.wait_accepting(std::chrono::milliseconds(request.timeout_ms),
                                        [] { std::this_thread::sleep_for(kPollInterval); });
      !open) {
    return open.error();
  }
  result.ready_ms = ms_between(t0, SteadyClock::now());

  auto url = [&](const std::string& path) {
    return fmt::format("http://127.0.0.1:{}{}", port, path);
  };
  std::vector<std::future<FirstGet>> firsts;
  for (const auto& path : request.paths) {
    firsts.push_back(std::async(std::launch::async, [&, path] {
      auto response = http_get(url(path), request.timeout_ms);
      return FirstGet{std::move(response), ms_between(t0, SteadyClock::now())};
    }));
  }
  std::optional<Error> failed;
  for (size_t i = 0; i < firsts.size(); ++i) {
    auto first = firsts[i].get();
    if (!first.response) {
      failed = Error{request.paths[i] + ": " + first.response.error().message};
      continue;
    }
    result.paths.push_back({request.paths[i], first.at_ms, 0, first.response->status});
  }
  if (failed) return *failed;
  const pid_t node = largest_in_tree(server.pid());
  result.node_rss_kb = proc_status_kb(node, "VmRSS:");
  for (const auto& path : request.unwarmed) {
    auto first = timed_get(url(path), request.timeout_ms);
    if (!first) return Error{path + ": " + first.error().message};
    result.unwarmed.push_back({path, first->first, 0, first->second});
  }
  for (auto& timing : result.paths) {
    auto next = timed_get(url(timing.path), request.timeout_ms);
    if (!next) return Error{timing.path + ": " + next.error().message};
    timing.steady_ms = next->first;
  }
  for (auto& timing : result.unwarmed) {
    std::vector<double> steady;
    for (int i = 0; i < kUnwarmedSteadyGets; ++i) {
      auto next = timed_get(url(timing.path), request.timeout_ms);
      if (!next) return Error{timing.path + ": " + next.error().message};
      steady.push_back(next->first);
    }
    timing.steady_ms = summarize(steady).median;
  }
  result.peak_rss_kb = server.peak_rss_kb();
  result.node_peak_kb = proc_status_kb(node, "VmHWM:");
  result.exit_code = server.stop();
  return result;
}

}  // namespace knext::bench
