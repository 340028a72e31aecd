#include "launcher/run.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <optional>

#include "common/clock.hpp"
#include "common/exit_status.hpp"
#include "common/log.hpp"
#include "common/port_reservation.hpp"
#include "common/spawn.hpp"
#include "common/uv_handle.hpp"
#include "launcher/compile_cache_setup.hpp"
#include "launcher/control_channel.hpp"
#include "launcher/fs_prewarm.hpp"
#include "launcher/init_process.hpp"
#include "launcher/launch_plan.hpp"
#include "launcher/learned_paths.hpp"
#include "launcher/restart_policy.hpp"
#include "launcher/startup_gate.hpp"
#include "launcher/supervisor.hpp"
#include "probes/admin/admin_routes.hpp"
#include "probes/admin/admin_server.hpp"
#include "probes/gate/proxy_gate.hpp"
#include "probes/launch_state.hpp"

namespace knext {
namespace {

void log_role(InitRole role) {
  if (role == InitRole::kSubreaper) {
    log::info("not PID 1: registered as child subreaper, so orphans are still reaped here");
  } else if (role == InitRole::kPlainParent) {
    log::warn("not PID 1 and PR_SET_CHILD_SUBREAPER failed: only direct children are reaped");
  }
}

// Root in the container is root on the volume: a warning names the way out (main() has already
// refused it with --refuse-root).
void warn_if_root(const Config& config) {
  if ((config.user ? config.user->uid : getuid()) != 0) return;
  log::warn("the app runs as root (uid 0): pass --user NAME|UID[:GID] to run it unprivileged");
}

}  // namespace

int run_supervised(const LaunchPlan& plan, Timeline& timeline, const RunOptions& options) {
  const Config& config = plan.config;
  warn_if_root(config);
  InitRole role = become_init();
  log_role(role);
  if (!plan.gate_note.empty()) log::warn(plan.gate_note);

  SpawnRequest request;
  request.argv = plan.argv;
  request.env = plan.env;
  request.new_process_group = config.signal_group;
  request.run_as = config.user;
  if (plan.binary) request.program = *plan.binary;

  CompileCacheSetup cache = prepare_compile_cache(plan.cache, request.env);

  // Before the loop: ~UvLoop runs the last callbacks (pool jobs write into the state).
  LaunchState state;
  UvLoop loop;
  if (auto ready = loop.init_status(); !ready) {
    log::error(ready.error().message);
    return 1;
  }
  state.compile_cache_dir = cache.placement.path;
  if (options.compile_cache_dir != nullptr) *options.compile_cache_dir = cache.placement.path;
  if (int fd = cache.placement.node_dir_fd(); fd >= 0) request.inherit_fds.push_back(fd);
  state.timeline = &timeline;
  GateMode gate = plan.gate;
  state.gate_mode = gate_name(gate);
  const int public_port = plan.public_port;
  const int internal_port = plan.internal_port;
  std::unique_ptr<ProxyGate> proxy;
  // For the launcher's life: a restarted app is held on an ephemeral port again.
  std::optional<PortReservation> port_reserved;
  if (gate == GateMode::kHandoff && public_port > 0) {
    if (auto held = PortReservation::hold(public_port)) {
      port_reserved.emplace(std::move(*held));
    } else {
      log::debug("PORT not reserved against ephemeral use: " + held.error().message);
    }
  }

  int code = 0;
  {
    Supervisor supervisor(
        loop.get(),
        SupervisorOptions{config.grace, config.leftover_grace, config.signal_group, role},
        timeline);
    std::unique_ptr<StartupGate> startup;
    std::unique_ptr<ControlChannel> channel;
    std::unique_ptr<LearnedPaths> learned;  // opened after the first spawn, kept across restarts
    const bool learn = effective_learn_paths(config) && !cache.placement.volume_dir.empty();
    bool first_start = true;
    // One start of the app: a fresh control channel or proxy listener, and a fresh gate, so a
    // restarted app is held back and warmed again before PORT opens.
    auto prepare_start = [&]() -> Expected<SpawnRequest> {
      SpawnRequest attempt = request;
      startup.reset();
      channel.reset();
      auto add_gate_env = [&] {
        for (const auto& [name, value] : plan.gate_env) set_env(attempt.env, name, value);
      };
      if (gate == GateMode::kHandoff) {
        auto created = ControlChannel::create(loop.get());
        if (!created) {
          log::warn(created.error().message + "; the gate is off, the app starts ungated");
          gate = GateMode::kNone;
          state.gate_mode = gate_name(gate);
        } else {
          channel = std::move(*created);
          add_gate_env();
          set_env(attempt.env, "KNEXT_CONTROL_FD", std::to_string(channel->child_fd()));
          // --learn-paths: the hook counts the paths users request (the record is on the volume).
          if (learn) set_env(attempt.env, "KNEXT_TRAFFIC", "1");
          attempt.inherit_fds.push_back(channel->child_fd());
        }
      }
      if (gate == GateMode::kProxy) {
        proxy = std::make_unique<ProxyGate>(loop.get(), config.ready_path);
        if (auto listening = proxy->listen("0.0.0.0", public_port); !listening) {
          if (!first_start) return Error{"proxy gate: " + listening.error().message, 1};
          log::warn(listening.error().message + "; the proxy gate is off, the app starts ungated");
          proxy.reset();
          gate = GateMode::kNone;
          state.gate_mode = gate_name(gate);
        } else {
          if (first_start) {
            log::info(fmt::format("proxy gate: listening on public port {}, at most {} connections",
                                  proxy->port(), proxy->max_connections()));
          }
          add_gate_env();
        }
      }
      state.gate_open = gate == GateMode::kNone;
      startup =
          std::make_unique<StartupGate>(loop.get(), config, plan.warm, timeline, state,
                                        [&supervisor](const std::string& reason, int exit_code) {
                                          supervisor.request_shutdown(reason, exit_code);
                                        });
      if (options.stop_after_flush) startup->keep_closed_after_flush();
      bool record_pages = first_start && !options.stop_after_flush;
      startup->on_flushed([&, record_pages] {
        after_cache_flush(loop.get(), cache, state);
        if (options.on_flushed) options.on_flushed(supervisor.child_pid());
        if (record_pages) {
          record_node_pages(loop.get(), plan, cache.placement, cache.options.app_uid,
                            supervisor.child_pid());
        }
        if (options.stop_after_flush) {
          supervisor.request_stop("prewarm: warm and flushed; stopping the app", 0);
        }
      });
      return attempt;
    };
    auto begin_gate = [&] {
      state.child_running = true;
      startup->learn_from(learned.get());
      if (channel) {
        channel->close_child_end();
        startup->start_handoff(std::move(channel), public_port, supervisor.child_pid());
      }
      if (proxy) startup->start_proxy(*proxy, internal_port, supervisor.child_pid());
    };

    RestartPolicy policy(config.restart, config.restart_max, config.restart_window);
    supervisor.on_child_exit([&](int) {
      state.child_running = false;
      // PORT closes with node (handoff); the proxy stops accepting: /readyz is 503 until a
      // restarted app is warm again.
      state.gate_open = false;
      if (proxy) proxy->close_listener();
      startup->child_exited();
    });
    supervisor.on_shutdown([&] {
      if (startup) startup->shutting_down();
    });
    supervisor.on_gone(
        [&](int wait_status) -> std::optional<std::chrono::milliseconds> {
          int exit_code = exit_code_from_wait_status(wait_status);
          auto decision = policy.on_exit(exit_code, supervisor.shutting_down(), SteadyClock::now());
          if (!decision.restart) {
            if (config.restart != RestartMode::kNever) {
              log::warn(fmt::format("the app exited with {}; not restarting: {}", exit_code,
                                    decision.reason));
            }
            return std::nullopt;
          }
          log::warn(fmt::format("the app exited with {}; restarting in {}ms ({})", exit_code,
                                decision.delay.count(), decision.reason));
          return decision.delay;
        },
        [&] {
          auto attempt = prepare_start();
          if (!attempt) {
            supervisor.request_shutdown("restart: " + attempt.error().message, 1);
            return;
          }
          if (!supervisor.restart(*attempt)) return;
          ++state.restarts;
          timeline.mark("restart", fmt::format("restart {}", state.restarts));
          begin_gate();
        });

    auto first = prepare_start();
    first_start = false;
    if (!first) {
      log::error(first.error().message);
      return first.error().code;
    }
    if (!plan.binary) {
      int err = plan.binary.error().code;
      log::error(fmt::format("{} (exit {})", spawn_error(plan.argv.front(), err).message,
                             exit_code_from_spawn_errno(err)));
      return exit_code_from_spawn_errno(err);
    }
    auto started = supervisor.start(*first);
    if (!started) {
      log::error(fmt::format("{} (exit {})", started.error().message, started.error().code));
      return started.error().code;
    }
    if (learn && gate != GateMode::kNone) learned = LearnedPaths::open(cache, plan.app_dir);
    if (config.learn_paths.value_or(false) && !learn) {
      log::info("--learn-paths: off, the compile cache is not on a --cache-dir volume");
    }
    auto fs_prewarm =
        start_fs_prewarm(loop.get(), plan, cache.placement, cache.options.app_uid, timeline);
    start_cache_maintenance(loop.get(), cache);
    std::unique_ptr<AdminServer> admin;
    if (config.admin_port != 0) {
      admin = std::make_unique<AdminServer>(
          loop.get(), [&state](const HttpRequestHead& req) { return admin_route(req, state); });
      if (auto listening = admin->listen(config.admin_host, config.admin_port); !listening) {
        log::warn(listening.error().message + "; the admin endpoint is off");
        admin.reset();
      } else {
        log::debug(fmt::format("admin endpoint on {} port {}", admin->host(), admin->port()));
      }
    }
    begin_gate();
    code = supervisor.wait();
  }
  log::info(fmt::format("exiting with code {}", code));
  return code;
}

}  // namespace knext
