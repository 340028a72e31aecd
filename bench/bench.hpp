#pragma once
#include "launcher/config.hpp"

namespace knext::bench {

// `knext-launch --bench`: the cold-start comparison on the app in the working directory.
int run(const Config& config);

}  // namespace knext::bench
