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
  // Routes that are not warm paths: once the warm paths have answered, each gets one GET (its
  // first request after ready), one after another, then kUnwarmedSteadyGets more.
  std::vector<std::string> unwarmed;
  int port = 0;  // 0: a free loopback port per run
  long timeout_ms = 60'000;
};

constexpr int kUnwarmedSteadyGets = 3;

struct PathTiming {
  std::string path;
  double first_ms = 0;   // the first GET answered, from spawn (sent the moment PORT accepts)
  double steady_ms = 0;  // latency of a later GET of the same path
  long status = 0;       // of the first GET
};

struct UnwarmedTiming {
  std::string path;
  double first_ms = 0;   // latency of its first GET, after the warm paths answered
  double steady_ms = 0;  // median latency of the GETs after it
  long status = 0;       // of the first GET
  double ratio() const { return steady_ms > 0 ? first_ms / steady_ms : 0; }
};

struct ServerRunResult {
  double ready_ms = 0;  // first completed TCP connect to PORT (polled every 5 ms), from spawn
  std::vector<PathTiming> paths;
  std::vector<UnwarmedTiming> unwarmed;
  long peak_rss_kb = 0;   // VmHWM of the process started (the launcher, an init, or node)
  long node_rss_kb = 0;   // VmRSS of the app server (largest in the tree) at the first responses
  long node_peak_kb = 0;  // its VmHWM at the end of the run
  int exit_code = 0;      // after SIGTERM
};

// Starts one server, measures it as Knative and its first users would see it, stops it. The
// first GETs of all paths go out together the moment PORT accepts, as a first wave of users would.
Expected<ServerRunResult> measure_server_run(const ServerRunRequest& request);

}  // namespace knext::bench
