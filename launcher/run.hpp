#pragma once
#include <sys/types.h>

#include <functional>
#include <string>

#include "common/timeline.hpp"
#include "launcher/launch_plan.hpp"

namespace knext {

struct RunOptions {
  // --prewarm: once warm and node flushed its compile cache, stop the app and exit 0 (PORT never
  // opens).
  bool stop_after_flush = false;
  std::string* compile_cache_dir = nullptr;  // set to the NODE_COMPILE_CACHE used, if any
  // Called with the child's pid once it is warm and flushed, before it is stopped.
  std::function<void(pid_t)> on_flushed;
};

// The default mode: supervise the planned command as init. Returns the process exit code.
int run_supervised(const LaunchPlan& plan, Timeline& timeline, const RunOptions& options = {});

}  // namespace knext
