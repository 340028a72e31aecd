#include "bench/wake_burst.hpp"

#include <fmt/format.h>

#include <thread>

#include "bench/load_client.hpp"
#include "bench/server_process.hpp"

namespace knext::bench {

Expected<WakeBurst> measure_wake_burst(const ServerRunRequest& request, int requests) {
  auto started = ServerProcess::start(request);
  if (!started) return started.error();
  ServerProcess& server = *started;
  const auto timeout = std::chrono::milliseconds(request.timeout_ms);
  // queue-proxy's TCP probe, on its own schedule from the spawn; nothing else touches PORT
  // before it passes (the activator holds the requests in its own process).
  auto next = server.spawned();
  if (auto open = server.wait_accepting(timeout,
                                        [&] {
                                          next += kQueueProxyProbeInterval;
                                          std::this_thread::sleep_until(next);
                                        });
      !open) {
    return open.error();
  }
  LoadPlan plan;
  plan.base_url = fmt::format("http://127.0.0.1:{}", server.port());
  plan.paths = request.paths;
  plan.requests = requests;
  plan.concurrency = requests;
  plan.request_timeout = timeout;
  plan.hold_retry = std::chrono::milliseconds(5);
  plan.hold_until = server.spawned() + timeout;
  LoadHooks hooks;
  hooks.target_alive = [&] { return server.running(); };
  auto load = run_load(plan, hooks);
  if (!load) return load.error();
  WakeBurst out;
  out.requests = load->sent;
  out.ok = load->ok;
  for (const auto& at : load->ok_done) out.done_ms.push_back(ms_between(server.spawned(), at));
  out.first_failure = load->first_failure;
  server.stop();
  return out;
}

}  // namespace knext::bench
