#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "common/timeline.hpp"
#include "common/version.hpp"
#include "launcher/bench_handoff.hpp"
#include "launcher/config.hpp"
#include "launcher/launch_plan.hpp"
#include "launcher/prewarm.hpp"
#include "launcher/run.hpp"
#include "launcher/signals.hpp"
#include "probes/warm/warm_worker.hpp"

int main(int argc, char** argv) {
  // Before anything that can block (the volume, BUILD_ID): the supervisor unblocks them once its
  // handlers exist, and what arrived meanwhile is handled then.
  knext::block_handled_signals();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args.front() == knext::kWarmWorkerFlag) {
    knext::unblock_handled_signals();
    return knext::run_warm_worker({args.begin() + 1, args.end()});
  }
  if (knext::bench_requested(args, knext::process_env())) {
    knext::unblock_handled_signals();  // the mask outlives exec
    return knext::exec_bench(args);
  }
  auto config = knext::parse_config(args, knext::process_env());
  if (!config) {
    std::fprintf(stderr, "knext-launch: %s\n", config.error().message.c_str());
    return 2;
  }
  switch (config->mode) {
    case knext::Mode::kHelp:
      std::fputs(knext::help_text().c_str(), stdout);
      return 0;
    case knext::Mode::kVersion:
      std::printf("knext-launch %s\n", knext::kVersion);
      return 0;
    default:
      break;
  }
  if (auto allowed = knext::app_user_allowed(config->user, config->refuse_root, getuid());
      !allowed) {
    std::fprintf(stderr, "knext-launch: %s\n", allowed.error().message.c_str());
    return 2;
  }
  knext::log::init(config->log_format, config->log_level);
  knext::Timeline timeline;
  timeline.mark_exec();
  timeline.mark("config-parsed");
  if (config->mode == knext::Mode::kPrewarm) {
    return knext::run_prewarm(*config, knext::real_launch_inputs(), timeline);
  }
  auto plan = knext::plan_launch(*config, knext::real_launch_inputs());
  if (!plan) {
    knext::log::error(plan.error().message);
    return 2;
  }
  return knext::run_supervised(*plan, timeline);
}
