#include "common/timeline.hpp"

#include "common/clock.hpp"
#include "common/log.hpp"

namespace knext {

double Timeline::mark(std::string_view name, std::string_view detail) {
  double ms = ms_since_start();
  phases_.push_back({std::string(name), ms});
  log::phase(name, ms, detail);
  return ms;
}

void Timeline::mark_exec() {
  phases_.push_back({"exec", 0.0});
  log::phase("exec", 0.0, "t0");
}

}  // namespace knext
