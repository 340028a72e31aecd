#include "launcher/run.hpp"

#include <fmt/format.h>

#include <charconv>

#include "common/loopback.hpp"
#include "launcher/compile_cache_setup.hpp"
#include "launcher/control_channel.hpp"
#include "launcher/fs_prewarm.hpp"
#include "launcher/hook_injection.hpp"
#include "launcher/init_process.hpp"
#include "launcher/log.hpp"
#include "launcher/startup_gate.hpp"
#include "launcher/supervisor.hpp"
#include "launcher/uv_handle.hpp"
#include "probes/admin_routes.hpp"
#include "probes/admin_server.hpp"
#include "probes/launch_state.hpp"
#include "probes/proxy_gate.hpp"

namespace knext {
namespace {

void log_role(InitRole role) {
  if (role == InitRole::kSubreaper) {
    log::info("not PID 1: registered as child subreaper, so orphans are still reaped here");
  } else if (role == InitRole::kPlainParent) {
    log::warn("not PID 1 and PR_SET_CHILD_SUBREAPER failed: only direct children are reaped");
  }
}

// The gate actually used: a gate that cannot work here degrades to none and says why once.
GateMode usable_gate(const Config& config, const std::vector<std::string>& env) {
  GateMode gate = effective_gate(config);
  if (gate == GateMode::kNone) return gate;
  auto port = get_env(env, "PORT");
  if (!port) {
    log::warn(
        fmt::format("PORT is not set, so there is no public port to hold back: gate {} "
                    "is off",
                    gate_name(gate)));
    return GateMode::kNone;
  }
  return gate;
}

}  // namespace

Expected<int> public_port_from_env(const std::vector<std::string>& env) {
  auto text = get_env(env, "PORT");
  if (!text) return Error{"PORT is not set"};
  int port = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), port);
  if (ec != std::errc{} || end != text->data() + text->size() || port < 1 || port > 65535) {
    return Error{"PORT: '" + *text + "' is not allowed; use a port number from 1 to 65535"};
  }
  return port;
}

int run_supervised(const Config& config, Timeline& timeline, const RunOptions& options) {
  InitRole role = become_init();
  log_role(role);

  SpawnRequest request;
  request.argv = effective_command(config);
  request.env = current_environment();
  request.new_process_group = config.signal_group;

  GateMode gate = usable_gate(config, request.env);
  if (gate != GateMode::kNone) {
    auto port = public_port_from_env(request.env);
    if (!port) {
      log::error(port.error().message);
      return 2;
    }
  }

  CompileCacheSetup cache = prepare_compile_cache(config, request.env);

  UvLoop loop;
  LaunchState state;
  state.compile_cache_dir = cache.placement.dir;
  if (options.compile_cache_dir != nullptr) *options.compile_cache_dir = cache.placement.dir;
  state.timeline = &timeline;
  state.gate_mode = gate_name(gate);
  std::unique_ptr<ControlChannel> channel;
  if (gate == GateMode::kHandoff) {
    auto hook = find_hook(config.hook_path);
    auto created = hook ? ControlChannel::create(loop.get())
                        : Expected<std::unique_ptr<ControlChannel>>(hook.error());
    if (!created) {
      log::warn(created.error().message + "; the gate is off, the app starts ungated");
      gate = GateMode::kNone;
      state.gate_mode = gate_name(gate);
    } else {
      channel = std::move(*created);
      inject_hook(request.env, *hook, channel->child_fd());
      request.inherit_fds.push_back(channel->child_fd());
    }
  }
  std::unique_ptr<ProxyGate> proxy;
  int internal_port = 0;
  if (gate == GateMode::kProxy) {
    auto public_port = public_port_from_env(request.env);
    auto internal = free_loopback_port();
    proxy = std::make_unique<ProxyGate>(loop.get(), config.ready_path);
    auto listening = internal ? proxy->listen("0.0.0.0", *public_port) : Status(internal.error());
    if (!listening) {
      log::warn(listening.error().message + "; the proxy gate is off, the app starts ungated");
      proxy.reset();
      gate = GateMode::kNone;
      state.gate_mode = gate_name(gate);
    } else {
      internal_port = *internal;
      log::info(fmt::format("proxy gate: listening on public port {}, at most {} connections",
                            proxy->port(), proxy->max_connections()));
      set_env(request.env, "PORT", std::to_string(internal_port));
      set_env(request.env, "HOSTNAME", "127.0.0.1");
    }
  }
  if (gate == GateMode::kNone) state.gate_open = true;

  int code = 0;
  {
    Supervisor supervisor(
        loop.get(),
        SupervisorOptions{config.grace, config.leftover_grace, config.signal_group, role},
        timeline);
    StartupGate startup(loop.get(), config, timeline, state, supervisor);
    startup.on_flushed([&] {
      after_cache_flush(loop.get(), cache, state);
      if (options.on_flushed) options.on_flushed(supervisor.child_pid());
      if (!options.stop_after_flush) {
        record_node_pages(loop.get(), config, cache.placement.volume_dir, supervisor.child_pid());
      }
      if (options.stop_after_flush) {
        supervisor.request_stop("prewarm: warm and flushed; stopping the app", 0);
      }
    });
    supervisor.on_child_exit([&](int) {
      state.child_running = false;
      startup.child_exited();
    });
    auto started = supervisor.start(request);
    if (!started) {
      log::error(fmt::format("{} (exit {})", started.error().message, started.error().code));
      return started.error().code;
    }
    state.child_running = true;
    auto fs_prewarm = start_fs_prewarm(loop.get(), config, cache.placement.volume_dir, timeline);
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
    if (channel) {
      channel->close_child_end();
      startup.start_handoff(std::move(channel));
    }
    if (proxy) startup.start_proxy(*proxy, internal_port);
    code = supervisor.wait();
  }
  log::info(fmt::format("exiting with code {}", code));
  return code;
}

}  // namespace knext
