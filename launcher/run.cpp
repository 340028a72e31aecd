#include "launcher/run.hpp"

#include <fmt/format.h>

#include "launcher/init_process.hpp"
#include "launcher/log.hpp"
#include "launcher/supervisor.hpp"
#include "launcher/uv_handle.hpp"

namespace knext {

int run_supervised(const Config& config, Timeline& timeline) {
  InitRole role = become_init();
  if (role == InitRole::kSubreaper) {
    log::info("not PID 1: registered as child subreaper, so orphans are still reaped here");
  } else if (role == InitRole::kPlainParent) {
    log::warn("not PID 1 and PR_SET_CHILD_SUBREAPER failed: only direct children are reaped");
  }

  SpawnRequest request;
  request.argv = effective_command(config);
  request.env = current_environment();
  request.new_process_group = config.signal_group;

  UvLoop loop;
  int code = 0;
  {
    Supervisor supervisor(
        loop.get(),
        SupervisorOptions{config.grace, config.leftover_grace, config.signal_group, role},
        timeline);
    auto started = supervisor.start(request);
    if (!started) {
      log::error(fmt::format("{} (exit {})", started.error().message, started.error().code));
      return started.error().code;
    }
    code = supervisor.wait();
  }
  log::info(fmt::format("exiting with code {}", code));
  return code;
}

}  // namespace knext
