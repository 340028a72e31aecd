#pragma once
#include <string>
#include <vector>

#include "common/cli_flags.hpp"

namespace knext {

// `--bench` (or KNEXT_BENCH=true) among the flags before `--`: the command line is knext-bench's.
bool bench_requested(const std::vector<std::string>& args, const EnvLookup& env);

// Execs knext-bench from beside this binary with the same arguments. Returns only when it
// cannot: after one line on stderr, with 2 (the image ships knext-launch alone).
int exec_bench(const std::vector<std::string>& args);

}  // namespace knext
