#pragma once
#include <chrono>

namespace knext {

using SteadyClock = std::chrono::steady_clock;

// The launcher's t0: captured during static initialisation, i.e. right after exec and dynamic
// linking. Every logged and exported phase is measured from here.
SteadyClock::time_point process_start();
double ms_since_start();
double ms_between(SteadyClock::time_point a, SteadyClock::time_point b);

}  // namespace knext
