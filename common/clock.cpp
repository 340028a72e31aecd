#include "common/clock.hpp"

namespace knext {
namespace {
const SteadyClock::time_point kStart = SteadyClock::now();
}

SteadyClock::time_point process_start() {
  return kStart;
}

double ms_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double ms_since_start() {
  return ms_between(kStart, SteadyClock::now());
}

}  // namespace knext
