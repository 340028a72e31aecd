#pragma once
#include "launcher/config.hpp"
#include "launcher/timeline.hpp"

namespace knext {

// The default mode: supervise the command as init. Returns the process exit code.
int run_supervised(const Config& config, Timeline& timeline);

}  // namespace knext
