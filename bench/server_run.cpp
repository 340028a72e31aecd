#include "bench/server_run.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "common/boost_process.hpp"
#include "common/clock.hpp"
#include "common/loopback.hpp"
#include "common/process_wait.hpp"
#include "probes/curl_api.hpp"

namespace bp = boost::process;

namespace knext::bench {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(5);

int decode_exit(int native) {
  if (WIFEXITED(native)) return WEXITSTATUS(native);
  if (WIFSIGNALED(native)) return 128 + WTERMSIG(native);
  return 1;
}

int stop(bp::child& child) {
  if (!child.running()) return decode_exit(child.native_exit_code());
  ::kill(child.id(), SIGTERM);
  if (!wait_with_timeout(child, std::chrono::seconds(10))) {
    ::kill(child.id(), SIGKILL);
    child.wait();
  }
  return decode_exit(child.native_exit_code());
}

}  // namespace

Expected<ServerRunResult> measure_server_run(const ServerRunRequest& request) {
  auto port = free_loopback_port();
  if (!port) return port.error();
  auto exe = request.argv.front().find('/') == std::string::npos
                 ? bp::search_path(request.argv.front())
                 : std::filesystem::path(request.argv.front());
  if (exe.empty()) return Error{"'" + request.argv.front() + "' is not in PATH", 2};

  bp::environment env = boost::this_process::environment();
  env["PORT"] = std::to_string(*port);
  env["HOSTNAME"] = "127.0.0.1";
  for (const auto& kv : request.extra_env) {
    auto eq = kv.find('=');
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::vector<std::string> args(request.argv.begin() + 1, request.argv.end());

  auto t0 = SteadyClock::now();
  bp::child child(bp::exe = exe.string(), bp::args = args, env, bp::std_out > bp::null,
                  bp::std_err > bp::null);
  ServerRunResult result;
  auto deadline = t0 + std::chrono::milliseconds(request.timeout_ms);
  while (!loopback_accepts(*port)) {
    if (!child.running()) {
      return Error{fmt::format("server exited ({}) before opening port {}",
                               decode_exit(child.native_exit_code()), *port)};
    }
    if (SteadyClock::now() > deadline) {
      stop(child);
      return Error{fmt::format("port {} did not open within {}ms", *port, request.timeout_ms)};
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  result.port_open_ms = ms_between(t0, SteadyClock::now());

  std::string url = fmt::format("http://127.0.0.1:{}{}", *port, request.first_path);
  auto first = http_get(url, request.timeout_ms);
  result.first_render_ms = ms_between(t0, SteadyClock::now());
  if (!first) {
    stop(child);
    return first.error();
  }
  result.first_status = first->status;
  auto t1 = SteadyClock::now();
  auto next = http_get(url, request.timeout_ms);
  result.next_request_ms = ms_between(t1, SteadyClock::now());
  result.exit_code = stop(child);
  if (!next) return next.error();
  return result;
}

}  // namespace knext::bench
