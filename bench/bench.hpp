#pragma once
#include "bench/bench_config.hpp"

namespace knext::bench {

// knext-bench (`knext-launch --bench`): the cold-start comparison on the app in the working
// directory.
int run(const BenchConfig& config);

}  // namespace knext::bench
