#include "bench/server_run.hpp"

#include <fmt/format.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <future>
#include <optional>
#include <thread>

#include "common/boost_process.hpp"
#include "common/clock.hpp"
#include "common/loopback.hpp"
#include "common/process_wait.hpp"
#include "launcher/exit_status.hpp"
#include "probes/curl_api.hpp"

namespace bp = boost::process;

namespace knext::bench {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(5);

int stop(bp::child& child) {
  if (!child.running()) return exit_code_from_wait_status(child.native_exit_code());
  ::kill(child.id(), SIGTERM);
  if (!wait_with_timeout(child, std::chrono::seconds(10))) {
    ::kill(child.id(), SIGKILL);
    child.wait();
  }
  return exit_code_from_wait_status(child.native_exit_code());
}

long peak_rss_kb(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      long kb = 0;
      status >> kb;
      return kb;
    }
    status.ignore(4096, '\n');
  }
  return 0;
}

struct FirstGet {
  Expected<HttpResponse> response;
  double at_ms;  // completed, from spawn
};

}  // namespace

Expected<ServerRunResult> measure_server_run(const ServerRunRequest& request) {
  int port = request.port;
  if (port == 0) {
    auto free_port = free_loopback_port();
    if (!free_port) return free_port.error();
    port = *free_port;
  }
  auto exe = request.argv.front().find('/') == std::string::npos
                 ? bp::search_path(request.argv.front())
                 : std::filesystem::path(request.argv.front());
  if (exe.empty()) return Error{"'" + request.argv.front() + "' is not in PATH", 2};

  bp::environment env = boost::this_process::environment();
  env["PORT"] = std::to_string(port);
  env["HOSTNAME"] = "127.0.0.1";
  for (const auto& kv : request.extra_env) {
    auto eq = kv.find('=');
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::vector<std::string> args(request.argv.begin() + 1, request.argv.end());
  std::string cwd = request.cwd.empty() ? std::filesystem::current_path().string() : request.cwd;

  auto t0 = SteadyClock::now();
  bp::child child;
  try {
    child = bp::child(bp::exe = exe.string(), bp::args = args, env, bp::start_dir = cwd,
                      bp::std_out > bp::null, bp::std_err > bp::null);
  } catch (const bp::process_error& e) {
    return Error{"cannot start " + exe.string() + ": " + e.what()};
  }
  ServerRunResult result;
  auto deadline = t0 + std::chrono::milliseconds(request.timeout_ms);
  while (!loopback_accepts(port)) {
    if (!child.running()) {
      return Error{fmt::format("server exited ({}) before opening port {}",
                               exit_code_from_wait_status(child.native_exit_code()), port)};
    }
    if (SteadyClock::now() > deadline) {
      stop(child);
      return Error{fmt::format("port {} did not open within {}ms", port, request.timeout_ms)};
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  result.ready_ms = ms_between(t0, SteadyClock::now());

  auto url = [&](const std::string& path) {
    return fmt::format("http://127.0.0.1:{}{}", port, path);
  };
  std::vector<std::future<FirstGet>> firsts;
  for (const auto& path : request.paths) {
    firsts.push_back(std::async(std::launch::async, [&, path] {
      auto response = http_get(url(path), request.timeout_ms);
      return FirstGet{std::move(response), ms_between(t0, SteadyClock::now())};
    }));
  }
  std::optional<Error> failed;
  for (size_t i = 0; i < firsts.size(); ++i) {
    auto first = firsts[i].get();
    if (!first.response) {
      failed = Error{request.paths[i] + ": " + first.response.error().message};
      continue;
    }
    result.paths.push_back({request.paths[i], first.at_ms, 0, first.response->status});
  }
  if (failed) {
    stop(child);
    return *failed;
  }
  for (auto& timing : result.paths) {
    auto t1 = SteadyClock::now();
    auto next = http_get(url(timing.path), request.timeout_ms);
    timing.steady_ms = ms_between(t1, SteadyClock::now());
    if (!next) {
      stop(child);
      return Error{timing.path + ": " + next.error().message};
    }
  }
  result.peak_rss_kb = peak_rss_kb(child.id());
  result.exit_code = stop(child);
  return result;
}

}  // namespace knext::bench
