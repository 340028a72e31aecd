#pragma once
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace knext::bench {

struct ServerRunRequest {
  std::vector<std::string> argv;
  std::vector<std::string> extra_env;  // NAME=value added to the current environment
  std::string first_path = "/";
  long timeout_ms = 60'000;
};

struct ServerRunResult {
  double port_open_ms = 0;     // first completed TCP connect to PORT, from spawn
  double first_render_ms = 0;  // first GET of first_path completed, from spawn
  double next_request_ms = 0;  // the same GET again: steady state
  long first_status = 0;
  int exit_code = 0;  // after SIGTERM
};

// Starts one server on a fresh loopback port, measures it as a user would see it, stops it.
Expected<ServerRunResult> measure_server_run(const ServerRunRequest& request);

}  // namespace knext::bench
