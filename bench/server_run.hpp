#pragma once
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace knext::bench {

struct ServerRunRequest {
  std::vector<std::string> argv;
  std::vector<std::string> extra_env;  // NAME=value added to the current environment
  std::string cwd;                     // empty: this process's
  std::vector<std::string> paths = {"/"};
  int port = 0;  // 0: a free loopback port per run
  long timeout_ms = 60'000;
};

struct PathTiming {
  std::string path;
  double first_ms = 0;   // the first GET answered, from spawn (sent the moment PORT accepts)
  double steady_ms = 0;  // latency of a later GET of the same path
  long status = 0;       // of the first GET
};

struct ServerRunResult {
  double ready_ms = 0;  // first completed TCP connect to PORT (polled every 5 ms), from spawn
  std::vector<PathTiming> paths;
  long peak_rss_kb = 0;  // VmHWM of the process started (the launcher, an init, or node)
  int exit_code = 0;     // after SIGTERM
};

// Starts one server, measures it as Knative and its first users would see it, stops it. The
// first GETs of all paths go out together the moment PORT accepts, as a first wave of users would.
Expected<ServerRunResult> measure_server_run(const ServerRunRequest& request);

}  // namespace knext::bench
