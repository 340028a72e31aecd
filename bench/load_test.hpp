#pragma once
#include "bench/bench_config.hpp"

namespace knext::bench {

// `knext-launch --bench --load N --concurrency C`: scale from zero under load. Starts the app in
// the working directory under knext-launch (beside this binary) on a free loopback port while C
// keep-alive connections are already trying it (a refused connect is held and retried: harsher
// than Knative, whose activator holds requests in its own process), sends N requests round-robin
// over the app's pages, sends the launcher SIGTERM once the last of them has been sent, with
// requests in flight, and waits for those requests and for the launcher to exit.
//
// Prints a table on stdout (progress on stderr) and, with --json FILE, writes the figures there.
// Exit status: 0 when every request got a 2xx, none in flight at the SIGTERM was lost and the
// launcher exited within 35 s of it; 1 otherwise, or when the test could not run (nothing answered
// within 60 s, the launcher died early); 2 for bad input (no server.js and no command, a command
// not in PATH, a concurrency the open-file limit cannot hold).
int run_load_test(const BenchConfig& config);

}  // namespace knext::bench
