#include "bench/load_test.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "bench/load_client.hpp"
#include "bench/stats.hpp"
#include "bench/stop_on_signal.hpp"
#include "common/boost_process.hpp"
#include "common/clock.hpp"
#include "common/exit_status.hpp"
#include "common/loopback.hpp"
#include "common/process_wait.hpp"
#include "common/self_exe.hpp"
#include "common/spawn.hpp"

namespace bp = boost::process;

namespace knext::bench {
namespace {

using namespace std::chrono_literals;

constexpr auto kHoldDeadline = 60s;  // from spawn: how long requests are held for a first answer
constexpr auto kExitWait = 35s;  // after SIGTERM: the launcher's default --grace (25 s) and more
constexpr auto kRequestTimeout = 30s;
constexpr auto kHoldRetry = 5ms;
constexpr int kSpareFds = 64;  // beyond one per connection: stdio, libcurl's own, the child pipes

// The launcher under test. Going out of scope still running, it gets SIGTERM and then SIGKILL:
// a bare SIGKILL would leave node running, reparented away from us.
class LauncherProcess {
 public:
  LauncherProcess(const std::string& exe, const std::vector<std::string>& args, bp::environment env)
      : child_(bp::exe = exe, bp::args = args, env, bp::std_in<bp::null, bp::std_out> bp::null) {
    on_stop_.spawned(child_.id());
  }
  ~LauncherProcess() {
    std::error_code ec;
    if (!child_.running(ec) || ec) return;
    terminate();
    if (!wait_exit(10s)) kill_now();
  }
  LauncherProcess(const LauncherProcess&) = delete;
  LauncherProcess& operator=(const LauncherProcess&) = delete;

  bool running() { return child_.running(); }
  void terminate() { ::kill(child_.id(), SIGTERM); }
  void kill_now() {
    ::kill(child_.id(), SIGKILL);
    child_.wait();
  }
  // The decoded exit status, or nothing if it is still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    if (!wait_with_timeout(child_, timeout)) return std::nullopt;
    return exit_code_from_wait_status(child_.native_exit_code());
  }

 private:
  StopChildOnSignal on_stop_{10s};  // before child_: registered before the spawn
  bp::child child_;
};

struct Latency {
  double min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
};

// Nearest-rank percentiles.
Latency percentiles(std::vector<double> samples) {
  Latency l;
  if (samples.empty()) return l;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size())));
    return samples[std::max<size_t>(rank, 1) - 1];
  };
  l.min = samples.front();
  l.p50 = at(0.5);
  l.p90 = at(0.9);
  l.p99 = at(0.99);
  l.max = samples.back();
  return l;
}

struct Report {
  long requests = 0;
  int concurrency = 0;
  std::vector<std::string> paths;
  std::string launcher_command;
  int port = 0;
  LoadResult load;
  Latency latency;
  double first_ok_ms = 0;
  double requests_per_s = 0;
  std::optional<int> exit_code;   // none: killed, it had not exited kExitWait after SIGTERM
  double exit_ms = 0;             // from SIGTERM
  std::optional<int> early_exit;  // the launcher exited before the SIGTERM, with this status

  long finished() const { return load.ok + load.failed.total() + load.lost.total(); }
  bool clean() const {
    return load.failed.total() == 0 && load.lost.total() == 0 && exit_code && !early_exit;
  }
};

// The configured warm paths first, then the fixture's pages; each once.
std::vector<std::string> load_paths(const BenchConfig& config) {
  std::vector<std::string> paths;
  auto add = [&](const std::string& p) {
    if (std::find(paths.begin(), paths.end(), p) == paths.end()) paths.push_back(p);
  };
  for (const auto& p : config.warm_paths) add(p);
  for (const char* p : {"/", "/dynamic", "/list", "/api/health"}) add(p);
  return paths;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// One stderr line about bad input, or nothing; mirrors `--bench`'s own checks.
std::optional<std::string> bad_input(const BenchConfig& config,
                                     const std::vector<std::string>& command) {
  if (config.command.empty() && !std::filesystem::exists("server.js")) {
    return fmt::format(
        "no server.js in {}; run it in the standalone output directory or give the server "
        "command after --",
        std::filesystem::current_path().string());
  }
  if (!resolve_command(command.front())) {
    return fmt::format("'{}' is not in PATH", command.front());
  }
  rlimit files{};
  rlim_t needed = static_cast<rlim_t>(config.concurrency) + kSpareFds;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_max != RLIM_INFINITY &&
      files.rlim_max < needed) {
    return fmt::format("--concurrency {} needs {} open files; the hard limit is {}",
                       config.concurrency, needed, files.rlim_max);
  }
  return std::nullopt;
}

void raise_open_file_limit(int concurrency) {
  rlimit files{};
  rlim_t needed = static_cast<rlim_t>(concurrency) + kSpareFds;
  if (getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur >= needed) return;
  files.rlim_cur = needed;
  setrlimit(RLIMIT_NOFILE, &files);
}

void print_progress(const LoadProgress& p, long requests, SteadyClock::time_point t0) {
  std::fprintf(stderr, "load %6.1f s  %ld/%ld finished  %ld errors  %ld in flight",
               ms_between(t0, SteadyClock::now()) / 1000, p.finished, requests, p.failed,
               p.in_flight);
  if (p.held > 0) std::fprintf(stderr, "  %ld held (connect refused, retrying)", p.held);
  std::fputc('\n', stderr);
}

Expected<Report> run_load_report(const BenchConfig& config,
                                 const std::vector<std::string>& command) {
  auto port = free_loopback_port();
  if (!port) return port.error();
  std::vector<std::string> args{"--log-level=warn", "--admin-port=0"};
  if (!config.gate.empty()) args.push_back("--gate=" + config.gate);
  for (const auto& p : config.warm_paths) args.push_back("--warm-path=" + p);
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  bp::environment env = boost::this_process::environment();
  env["PORT"] = std::to_string(*port);
  env["HOSTNAME"] = "127.0.0.1";

  Report report;
  report.requests = config.load_requests;
  report.concurrency = config.concurrency;
  report.paths = load_paths(config);
  report.launcher_command = "knext-launch " + join(args);
  report.port = *port;
  raise_open_file_limit(config.concurrency);

  auto t0 = SteadyClock::now();
  std::optional<LauncherProcess> launcher;
  try {
    launcher.emplace(launcher_command(), args, env);
  } catch (const std::exception& e) {
    return Error{fmt::format("cannot start {}: {}", launcher_command(), e.what())};
  }

  LoadPlan plan;
  plan.base_url = fmt::format("http://127.0.0.1:{}", *port);
  plan.paths = report.paths;
  plan.requests = config.load_requests;
  plan.concurrency = config.concurrency;
  plan.stop_when_all_sent = true;
  plan.request_timeout = kRequestTimeout;
  plan.hold_retry = kHoldRetry;
  plan.hold_until = t0 + kHoldDeadline;
  LoadHooks hooks;
  hooks.on_stop = [&] { launcher->terminate(); };
  hooks.on_tick = [&](const LoadProgress& p) { print_progress(p, plan.requests, t0); };
  hooks.target_alive = [&] { return launcher->running(); };

  auto load = run_load(plan, hooks);
  if (!load) {
    if (launcher->running()) return load.error();
    return Error{fmt::format("the launcher exited ({}) before the load test was done: {}",
                             launcher->wait_exit(0ms).value_or(-1), load.error().message)};
  }
  report.load = std::move(*load);
  report.latency = percentiles(report.load.latencies_ms);
  report.first_ok_ms = ms_between(t0, *report.load.first_ok);
  double steady_s = ms_between(*report.load.first_ok, report.load.stop_time) / 1000;
  if (report.load.stopped && steady_s > 0) {
    report.requests_per_s = static_cast<double>(report.load.ok_at_stop) / steady_s;
  }
  if (!report.load.stopped) {
    report.early_exit = launcher->wait_exit(0ms).value_or(-1);
    return report;
  }
  auto left = kExitWait - std::chrono::duration_cast<std::chrono::milliseconds>(
                              SteadyClock::now() - report.load.stop_time);
  report.exit_code = launcher->wait_exit(std::max(left, std::chrono::milliseconds(0)));
  report.exit_ms = ms_between(report.load.stop_time, SteadyClock::now());
  if (!report.exit_code) launcher->kill_now();
  return report;
}

struct ConnectionSpread {
  Latency max_ms;        // over connections, of each one's slowest 2xx
  Latency first_ms;      // of each one's first 2xx
  Latency max_later_ms;  // of each one's slowest 2xx after its first
  long min_requests = 0;
  long max_requests = 0;
};

ConnectionSpread connection_spread(const LoadResult& l) {
  ConnectionSpread out;
  std::vector<double> maxima, firsts, later;
  for (const auto& c : l.connections) {
    firsts.push_back(c.first_ms);
    later.push_back(c.max_later_ms);
    maxima.push_back(c.max_ms);
    out.min_requests = maxima.size() == 1 ? c.requests : std::min(out.min_requests, c.requests);
    out.max_requests = std::max(out.max_requests, c.requests);
  }
  out.max_ms = percentiles(maxima);
  out.first_ms = percentiles(firsts);
  out.max_later_ms = percentiles(later);
  return out;
}

std::string failure_breakdown(const FailureCounts& f) {
  return fmt::format("non-2xx {}, reset {}, timeout {}, refused {}, other {}", f.non_2xx, f.reset,
                     f.timeout, f.refused, f.other);
}

void print_report(const Report& r) {
  const LoadResult& l = r.load;
  std::printf(
      "\nscale-from-zero load test: %ld requests over %d keep-alive connections, round-robin "
      "over %s\n",
      r.requests, r.concurrency, join(r.paths).c_str());
  std::printf(
      "started from nothing: %s on 127.0.0.1:%d; refused connects held and retried every %lld "
      "ms; SIGTERM once the last request was sent\n",
      r.launcher_command.c_str(), r.port, static_cast<long long>(kHoldRetry.count()));
  std::printf("%-22s %.1f ms from spawn\n", "first 2xx", r.first_ok_ms);
  std::printf("%-22s %ld sent, %ld finished, %ld 2xx\n", "requests", l.sent, r.finished(), l.ok);
  std::printf("%-22s %ld (%s)\n", "errors", l.failed.total(), failure_breakdown(l.failed).c_str());
  std::printf(
      "%-22s p50 %.1f  p90 %.1f  p99 %.1f  max %.1f ms (2xx, from the first connect attempt: "
      "held requests include the cold start)\n",
      "latency", r.latency.p50, r.latency.p90, r.latency.p99, r.latency.max);
  std::printf("%-22s %.0f requests/s (2xx between the first 2xx and the SIGTERM)\n", "throughput",
              r.requests_per_s);
  auto conn = connection_spread(l);
  std::printf(
      "%-22s slowest request per connection: min %.1f  p50 %.1f  max %.1f ms; 2xx per "
      "connection: min %ld  max %ld\n",
      "per connection", conn.max_ms.min, conn.max_ms.p50, conn.max_ms.max, conn.min_requests,
      conn.max_requests);
  std::printf(
      "%-22s first request per connection (held from spawn): p50 %.1f  max %.1f ms; slowest "
      "later one per connection: p50 %.1f  max %.1f ms\n",
      "", conn.first_ms.p50, conn.first_ms.max, conn.max_later_ms.p50, conn.max_later_ms.max);
  const SlowestRequest& s = l.slowest;
  std::printf(
      "%-22s GET %s on connection %zu: %.1f ms, first tried %.1f ms into the run, %ld refused "
      "connects retried, last attempt: %ld new connection(s), connected after %.1f ms, first "
      "byte after %.1f ms\n",
      "slowest request", s.path.c_str(), s.connection, s.ms, s.started_ms, s.held_retries,
      s.new_connections, s.connect_ms, s.first_byte_ms);
  if (l.stopped) {
    std::printf("%-22s %ld in flight, %ld lost (%s)\n", "at SIGTERM", l.in_flight_at_stop,
                l.lost.total(), failure_breakdown(l.lost).c_str());
  }
  if (r.early_exit) {
    std::printf("%-22s exited %d BEFORE the SIGTERM\n", "launcher", *r.early_exit);
  } else if (r.exit_code) {
    std::printf(
        "%-22s exit status %d, %.1f ms after SIGTERM (our connections closed once the in-flight "
        "requests were done)\n",
        "launcher", *r.exit_code, r.exit_ms);
  } else {
    std::printf("%-22s still running %.0f ms after SIGTERM: killed\n", "launcher", r.exit_ms);
  }
  if (!l.first_failure.empty()) {
    std::printf("%-22s %s\n", "first failure", l.first_failure.c_str());
  }
  std::fflush(stdout);
}

namespace json = boost::json;

// ms to the µs, as the table's figures.
double ms3(double value) {
  return rounded(value, 1000);
}

json::object counts_json(const FailureCounts& f) {
  return {{"non_2xx", f.non_2xx},
          {"reset", f.reset},
          {"timeout", f.timeout},
          {"refused", f.refused},
          {"other", f.other}};
}

json::value optional_json(const std::optional<int>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

std::string to_json(const Report& r) {
  const LoadResult& l = r.load;
  json::array paths;
  for (const auto& p : r.paths) paths.emplace_back(p);
  auto conn = connection_spread(l);
  const SlowestRequest& s = l.slowest;
  json::object o;
  o["requests"] = r.requests;
  o["concurrency"] = r.concurrency;
  o["paths"] = std::move(paths);
  o["sent"] = l.sent;
  o["finished"] = r.finished();
  o["ok"] = l.ok;
  o["errors"] = l.failed.total();
  o["errors_by_kind"] = counts_json(l.failed);
  o["first_failure"] =
      l.first_failure.empty() ? json::value(nullptr) : json::value(l.first_failure);
  o["latency_ms"] = {{"p50", ms3(r.latency.p50)},
                     {"p90", ms3(r.latency.p90)},
                     {"p99", ms3(r.latency.p99)},
                     {"max", ms3(r.latency.max)}};
  o["requests_per_s"] = rounded(r.requests_per_s, 10);
  o["per_connection"] = {
      {"slowest_ms",
       {{"min", ms3(conn.max_ms.min)},
        {"p50", ms3(conn.max_ms.p50)},
        {"max", ms3(conn.max_ms.max)}}},
      {"first_ms", {{"p50", ms3(conn.first_ms.p50)}, {"max", ms3(conn.first_ms.max)}}},
      {"slowest_later_ms",
       {{"p50", ms3(conn.max_later_ms.p50)}, {"max", ms3(conn.max_later_ms.max)}}},
      {"min_requests", conn.min_requests},
      {"max_requests", conn.max_requests}};
  o["slowest_request"] = {{"path", s.path},
                          {"connection", s.connection},
                          {"ms", ms3(s.ms)},
                          {"started_ms", ms3(s.started_ms)},
                          {"held_retries", s.held_retries},
                          {"new_connections", s.new_connections},
                          {"connect_ms", ms3(s.connect_ms)},
                          {"first_byte_ms", ms3(s.first_byte_ms)}};
  o["time_to_first_success_ms"] = ms3(r.first_ok_ms);
  o["finished_at_sigterm"] = l.finished_at_stop;
  o["in_flight_at_sigterm"] = l.in_flight_at_stop;
  o["lost"] = l.lost.total();
  o["lost_by_kind"] = counts_json(l.lost);
  o["launcher_exit"] = optional_json(r.exit_code ? r.exit_code : r.early_exit);
  o["launcher_exited_before_sigterm"] = r.early_exit.has_value();
  o["launcher_exit_ms_after_sigterm"] =
      r.exit_code ? json::value(ms3(r.exit_ms)) : json::value(nullptr);
  return json::serialize(o) + "\n";
}

bool write_json(const std::string& path, const Report& report) {
  std::ofstream out(path, std::ios::trunc);
  out << to_json(report);
  out.close();
  return static_cast<bool>(out);
}

}  // namespace

int run_load_test(const BenchConfig& config) {
  std::vector<std::string> command = server_command(config);
  if (auto bad = bad_input(config, command)) {
    std::fprintf(stderr, "knext-launch: --bench --load: %s\n", bad->c_str());
    return 2;
  }
  auto report = run_load_report(config, command);
  if (!report) {
    std::fprintf(stderr, "knext-launch: --bench --load: %s\n", report.error().message.c_str());
    return 1;
  }
  print_report(*report);
  if (!config.json.empty() && !write_json(config.json, *report)) {
    std::fprintf(stderr, "knext-launch: --bench --load: cannot write %s\n", config.json.c_str());
    return 1;
  }
  return report->clean() ? 0 : 1;
}

}  // namespace knext::bench
