// knext-bench: the cold-start comparison and the load test, a program of its own so that
// knext-launch (PID 1 in every container) links none of it; `knext-launch --bench` execs it.
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench.hpp"
#include "bench/bench_config.hpp"
#include "bench/stop_on_signal.hpp"
#include "common/version.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto config = knext::bench::parse_bench_config(args, knext::process_env());
  if (!config) {
    std::fprintf(stderr, "knext-bench: %s\n", config.error().message.c_str());
    return 2;
  }
  if (config->help) {
    std::fputs(knext::bench::bench_help_text().c_str(), stdout);
    return 0;
  }
  if (config->version) {
    std::printf("knext-bench %s\n", knext::kVersion);
    return 0;
  }
  knext::bench::stop_on_signal();
  return knext::bench::run(*config);
}
