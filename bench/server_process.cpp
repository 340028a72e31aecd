#include "bench/server_process.hpp"

#include <fmt/format.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "bench/process_tree.hpp"
#include "common/exit_status.hpp"
#include "common/loopback.hpp"
#include "common/process_wait.hpp"
#include "common/spawn.hpp"

namespace bp = boost::process;

namespace knext::bench {

Expected<ServerProcess> ServerProcess::start(const ServerRunRequest& request) {
  ServerProcess p;
  p.port_ = request.port;
  if (p.port_ == 0) {
    auto free_port = free_loopback_port();
    if (!free_port) return free_port.error();
    p.port_ = *free_port;
  }
  auto exe = resolve_command(request.argv.front());
  if (!exe) return Error{"'" + request.argv.front() + "' is not in PATH", 2};

  bp::environment env = boost::this_process::environment();
  env["PORT"] = std::to_string(p.port_);
  env["HOSTNAME"] = "127.0.0.1";
  for (const auto& kv : request.extra_env) {
    auto eq = kv.find('=');
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::vector<std::string> args(request.argv.begin() + 1, request.argv.end());
  std::string cwd = request.cwd.empty() ? std::filesystem::current_path().string() : request.cwd;
  p.spawned_ = SteadyClock::now();
  p.on_stop_ = std::make_unique<StopChildOnSignal>(std::chrono::seconds(10));
  try {
    p.child_ =
        std::make_unique<bp::child>(bp::exe = *exe, bp::args = args, env, bp::start_dir = cwd,
                                    bp::std_out > bp::null, bp::std_err > bp::null);
  } catch (const bp::process_error& e) {
    p.on_stop_->failed();
    return Error{"cannot start " + *exe + ": " + e.what()};
  }
  p.on_stop_->spawned(p.child_->id());
  return p;
}

ServerProcess::~ServerProcess() {
  if (child_) stop();
}

bool ServerProcess::running() {
  std::error_code ec;
  return child_ && child_->running(ec) && !ec;
}

pid_t ServerProcess::pid() const {
  return child_ ? child_->id() : -1;
}

long ServerProcess::peak_rss_kb() const {
  return proc_status_kb(pid(), "VmHWM:");
}

Status ServerProcess::wait_accepting(std::chrono::milliseconds timeout,
                                     const std::function<void()>& pause) {
  const auto deadline = spawned_ + timeout;
  while (!loopback_accepts(port_)) {
    if (!running()) {
      return Error{fmt::format("server exited ({}) before opening port {}", stop(), port_)};
    }
    if (SteadyClock::now() > deadline) {
      return Error{fmt::format("port {} did not open within {}ms", port_, timeout.count())};
    }
    pause();
  }
  return ok_status();
}

int ServerProcess::stop() {
  if (!child_) return 0;
  if (!running()) return exit_code_from_wait_status(child_->native_exit_code());
  ::kill(child_->id(), SIGTERM);
  if (!wait_with_timeout(*child_, std::chrono::seconds(10))) {
    ::kill(child_->id(), SIGKILL);
    child_->wait();
  }
  return exit_code_from_wait_status(child_->native_exit_code());
}

}  // namespace knext::bench
