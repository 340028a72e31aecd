#pragma once
#include <sys/types.h>

#include <functional>
#include <memory>

#include "bench/server_run.hpp"
#include "bench/stop_on_signal.hpp"
#include "common/boost_process.hpp"
#include "common/clock.hpp"
#include "common/expected.hpp"

namespace knext::bench {

// One server under test on 127.0.0.1:port (PORT and HOSTNAME set, output discarded). Going out
// of scope still running, it gets SIGTERM, then SIGKILL after 10 s.
class ServerProcess {
 public:
  // request.port, or a free loopback port when it is 0.
  static Expected<ServerProcess> start(const ServerRunRequest& request);
  ServerProcess(ServerProcess&&) noexcept = default;
  ServerProcess& operator=(ServerProcess&&) noexcept = default;
  ~ServerProcess();

  int port() const { return port_; }
  SteadyClock::time_point spawned() const { return spawned_; }
  bool running();
  pid_t pid() const;
  long peak_rss_kb() const;  // VmHWM
  int stop();                // SIGTERM (SIGKILL after 10 s); the decoded exit status
  // Probes PORT with a TCP connect until it accepts, calling `pause` between probes; an error
  // when the server exits first or `timeout` after the spawn passes.
  Status wait_accepting(std::chrono::milliseconds timeout, const std::function<void()>& pause);

 private:
  ServerProcess() = default;
  std::unique_ptr<boost::process::child> child_;
  std::unique_ptr<StopChildOnSignal> on_stop_;
  int port_ = 0;
  SteadyClock::time_point spawned_;
};

}  // namespace knext::bench
