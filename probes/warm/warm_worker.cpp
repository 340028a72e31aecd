#include "probes/warm/warm_worker.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "cachewarm/build_id.hpp"
#include "cachewarm/text_file.hpp"
#include "common/loopback.hpp"
#include "probes/http/curl_api.hpp"
#include "probes/warm/command_lines.hpp"
#include "probes/warm/critical_path.hpp"
#include "probes/warm/node_rss.hpp"
#include "probes/warm/route_discovery.hpp"
#include "probes/warm/thread_cpu.hpp"
#include "probes/warm/warm_convergence.hpp"
#include "probes/warm/warm_plan.hpp"
#include "probes/warm/warm_record.hpp"

namespace knext {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRetryPause = std::chrono::milliseconds(20);
constexpr auto kCpuPoll = std::chrono::milliseconds(5);
constexpr long kMaxAttemptMs = 30'000;
// After the gate opens, and after each user request, warming waits this long without a user
// request: the requests the activator held arrive in a burst just after ready (and a client's
// next request comes right after its last answer), and are served before any warming.
constexpr auto kQuietAfterGate = std::chrono::milliseconds(100);
constexpr auto kQuietAfterUser = std::chrono::milliseconds(50);
// Background rendering stops once node's RSS has grown by this much since it began (every
// route's modules are loaded by then), or passes half the container's memory limit: rendering
// every route of a 1000-route app took node from 182 to 439 MiB, where plain node holds 199 MiB at
// its first response; the fixture's ten routes take it from ~101 to 157-161 MiB.
constexpr uint64_t kMaxRssGrowthBytes = 64ull << 20;
constexpr int kServerErrorTries = 3;
// A request whose main thread slept this long at under this share of CPU is waiting on the app.
constexpr double kWaitWindowMs = 30;
constexpr double kWaitCpuFraction = 0.10;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct WorkerOptions {
  bool auto_mode = false;
  bool bake = false;
  bool wait_needs_answer = false;
  bool hold_first = false;
  std::vector<std::string> skip;
  std::vector<std::string> paths;
  std::vector<std::string> learned;
};

std::optional<WorkerOptions> parse_options(const std::vector<std::string>& args) {
  WorkerOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--auto") {
      o.auto_mode = true;
    } else if (args[i] == "--bake") {
      o.bake = true;
    } else if (args[i] == kWaitNeedsAnswerFlag) {
      o.wait_needs_answer = true;
    } else if (args[i] == kHoldFirstFlag) {
      o.hold_first = true;
    } else if (args[i] == "--skip" && i + 1 < args.size()) {
      o.skip.push_back(args[++i]);
    } else if (args[i] == kLearnedFlag && i + 1 < args.size() && args[i + 1].starts_with('/')) {
      o.learned.push_back(args[++i]);
    } else if (!args[i].empty() && args[i].front() == '/') {
      o.paths.push_back(args[i]);
    } else {
      return std::nullopt;
    }
  }
  return o;
}

// State shared with the stdin reader and with requests left running in the background.
class Worker {
 public:
  void emit(const std::string& line) {
    std::lock_guard lock(out_mutex_);
    for (size_t done = 0; done < line.size();) {
      ssize_t n = write(STDOUT_FILENO, line.data() + done, line.size() - done);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }
  void report(const WarmPathStatus& s) { emit(format_warm_result(s)); }
  void log(std::string_view level, const std::string& text) {
    std::string clean = text;
    for (char& ch : clean) {
      if (ch == '\n' || ch == '\t') ch = ' ';
    }
    emit(fmt::format("log\t{}\t{}\n", level, clean));
  }

  // Reads the launcher's later lines until EOF or until the reader is stopped.
  void read_commands(CommandLines& lines) {
    while (auto line = lines.next()) {
      std::lock_guard lock(mutex_);
      if (*line == "busy") {
        busy_ = true;
      } else if (*line == "idle") {
        busy_ = false;
        quiet_from_ = Clock::now() + kQuietAfterUser;
      } else if (line->rfind("bg ", 0) == 0) {
        background_budget_ms_ = std::atol(line->c_str() + 3);
        after_preload_ = line->find(" after-preload") != std::string::npos;
        quiet_from_ = Clock::now() + kQuietAfterGate;
      } else if (*line == "preloaded") {
        preloaded_ = true;
      }
      changed_.notify_all();
    }
    std::lock_guard lock(mutex_);
    stopped_ = true;
    cancel_ = true;
    changed_.notify_all();
  }

  // Waits for the launcher's "bg"; nullopt on EOF.
  std::optional<long> wait_background() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return stopped_ || background_budget_ms_.has_value(); });
    if (stopped_) return std::nullopt;
    return background_budget_ms_;
  }

  // Waits until no user request is in flight and none was for the quiet period (kQuietAfter*);
  // false on EOF or past the deadline.
  bool wait_idle(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    for (;;) {
      changed_.wait_until(lock, deadline, [&] { return stopped_ || !busy_; });
      if (stopped_ || busy_ || Clock::now() >= deadline) return false;
      auto quiet = quiet_from_;
      if (Clock::now() >= quiet) return true;
      changed_.wait_until(lock, std::min(quiet, deadline), [&] { return stopped_ || busy_; });
    }
  }

  // With "bg <ms> after-preload": waits for "preloaded" (Next's deferred preload loaded every
  // route); false on EOF or past the deadline. At once otherwise.
  bool wait_preloaded(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    changed_.wait_until(lock, deadline, [&] { return stopped_ || !after_preload_ || preloaded_; });
    return !stopped_ && (!after_preload_ || preloaded_);
  }

  bool stopped() {
    std::lock_guard lock(mutex_);
    return stopped_;
  }
  const std::atomic<bool>* cancel_flag() const { return &cancel_; }
  // Some request got an HTTP answer: the server is up, so a request it sits on is the app's
  // own waiting (before that it may also be a server stuck at its start: see wait_needs_answer).
  std::atomic<bool> server_answered{false};
  bool wait_needs_answer = false;  // --warm-fail=exit: before an answer nothing is "waiting"

  std::vector<std::thread> left_running;  // requests the gate stopped waiting for

 private:
  std::mutex out_mutex_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool busy_ = false;
  Clock::time_point quiet_from_{};  // no warming before this (the gate opened, a user left)
  bool after_preload_ = false;      // background routes wait for Next's deferred preload
  bool preloaded_ = false;
  bool stopped_ = false;
  std::atomic<bool> cancel_{false};
  std::optional<long> background_budget_ms_;
};

struct Target {
  std::string base_url;
  int cap = 8;
  pid_t node_pid = 0;
  Clock::time_point deadline;
};

// One GET in flight. wait() returns when it finished or, with a CPU sampler, once node's main
// thread is plainly waiting on the app's own timers or I/O; the request then keeps running and
// `on_late` receives its outcome.
class Flight {
 public:
  struct Outcome {
    Expected<HttpResponse> response{Error{"not sent"}};
    double ms = 0;
    double cpu_ms = -1;  // node's main-thread CPU time during the request; -1: not measured
  };
  using Late = std::function<void(const Outcome&)>;

  Flight(Worker& worker, const std::string& url, long timeout_ms, const ThreadCpu* meter)
      : state_(std::make_shared<Shared>()) {
    auto state = state_;
    thread_ = std::thread([state, url, timeout_ms, meter, cancel = worker.cancel_flag()] {
      auto before = meter != nullptr ? meter->sample(0) : std::nullopt;
      auto start = Clock::now();
      Outcome out{http_get(url, timeout_ms, cancel, std::string(kWarmupHeader), &state->connected),
                  0};
      out.ms = ms_between(start, Clock::now());
      auto after = before ? meter->sample(out.ms) : std::nullopt;
      if (after) out.cpu_ms = after->cpu_ms - before->cpu_ms;
      Late late;
      {
        std::lock_guard lock(state->mutex);
        state->outcome = std::move(out);
        state->done = true;
        late = state->late;
        state->changed.notify_all();
      }
      if (late) late(state->outcome);
    });
  }

  // nullopt: left running (the request waits on the app), `on_late` will see its outcome.
  std::optional<Outcome> wait(const ThreadCpu* cpu, Worker& worker, Late on_late) {
    auto start = Clock::now();
    std::vector<CpuSample> samples;
    std::unique_lock lock(state_->mutex);
    for (;;) {
      if (state_->changed.wait_for(lock, kCpuPoll, [&] { return state_->done; })) break;
      if (cpu == nullptr || (worker.wait_needs_answer && !worker.server_answered)) continue;
      // A request not yet sent (connect refused and retried, or slow to be scheduled on a busy
      // machine) is not waiting on the app, whatever node's thread does.
      if (!state_->connected) {
        samples.clear();
        start = Clock::now();
        continue;
      }
      auto now = Clock::now();
      if (auto s = cpu->sample(ms_between(start, now))) samples.push_back(*s);
      if (mostly_waiting(samples, kWaitWindowMs, kWaitCpuFraction)) {
        state_->late = std::move(on_late);
        lock.unlock();
        worker.left_running.push_back(std::move(thread_));
        return std::nullopt;
      }
    }
    lock.unlock();
    thread_.join();
    return std::move(state_->outcome);
  }

  ~Flight() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Shared {
    std::mutex mutex;
    std::condition_variable changed;
    bool done = false;
    std::atomic<bool> connected{false};
    Outcome outcome;
    Late late;
  };
  std::shared_ptr<Shared> state_;
  std::thread thread_;
};

long ms_left(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
}

bool is_ok(long status) {
  return status >= 200 && status < 400;
}

// Warms one path: retries until a definitive answer, then repeats while they pay.
class PathWarmer {
 public:
  // background: reported as not critical (its failure never fails warm-up); after_gate: sent
  // only while no user request is in flight.
  // meter: node's main thread (null when /proc cannot tell): repeats are judged on the CPU time
  // each took, which a busy machine disturbs far less than wall time.
  PathWarmer(Worker& worker, const Target& target, std::string path, bool background,
             const WarmRecordPath* recorded, bool after_gate, const ThreadCpu* meter)
      : worker_(worker),
        target_(target),
        recorded_(recorded),
        after_gate_(after_gate),
        meter_(meter) {
    s_.path = std::move(path);
    s_.background = background;
    s_.holds_gate = !after_gate;
    rule_.cap = target.cap;
    rule_.stop_without_gain = !after_gate;
  }

  const WarmPathStatus& status() const { return s_; }
  const std::vector<double>& latencies() const { return latencies_; }
  const std::vector<double>& cpu_costs() const { return cpu_; }

  void run(Clock::time_point deadline) {
    // In the background one request at a time, never left running.
    const ThreadCpu* cpu = after_gate_ ? nullptr : meter_;
    s_.state = WarmState::kWarming;
    worker_.report(s_);
    int server_errors = 0;
    while (latencies_.empty()) {
      auto outcome = send(cpu, deadline);
      if (!outcome) return;
      if (!*outcome) {
        if (s_.result.empty()) finish(WarmState::kFailed, "timeout");
        return;
      }
      const auto& response = (*outcome)->response;
      if (!response) {
        s_.last_error = response.error().message;
        if (response.error().code != CURLE_COULDNT_CONNECT &&
            ++server_errors >= kServerErrorTries) {
          return finish(WarmState::kFailed, "server-error");
        }
        worker_.report(s_);
        std::this_thread::sleep_for(kRetryPause);
        continue;
      }
      s_.last_error.clear();
      long status = response->status;
      if (is_ok(status)) {
        s_.first_ms = s_.last_ms = (*outcome)->ms;
        add(**outcome);
        break;
      }
      bool booting = status == 503 || status == 408 || status == 429;
      if (status >= 400 && status < 500 && !booting)
        return finish(WarmState::kFailed, "definitive");
      if (status >= 500 && !booting && ++server_errors >= kServerErrorTries) {
        return finish(WarmState::kFailed, "server-error");
      }
      worker_.report(s_);
      std::this_thread::sleep_for(kRetryPause);
    }
    for (;;) {
      RepeatVerdict verdict = judged_on_cpu() ? judge_repeats(cpu_, recorded_cpu(), rule_)
                                              : judge_repeats(latencies_, recorded_wall(), rule_);
      if (verdict != RepeatVerdict::kRepeat) return finish(WarmState::kOk, verdict_name(verdict));
      worker_.report(s_);
      auto outcome = send(cpu, deadline);
      if (!outcome) return;
      if (!*outcome) return finish(WarmState::kOk, after_gate_ ? "budget" : "timeout");
      const auto& response = (*outcome)->response;
      if (!response || !is_ok(response->status)) {
        if (!response) s_.last_error = response.error().message;
        return finish(WarmState::kOk, "unstable");
      }
      s_.last_ms = (*outcome)->ms;
      add(**outcome);
    }
  }

 private:
  void add(const Flight::Outcome& out) {
    latencies_.push_back(out.ms);
    if (out.cpu_ms >= 0) cpu_.push_back(out.cpu_ms);
  }
  bool judged_on_cpu() const { return !cpu_.empty() && cpu_.size() == latencies_.size(); }
  std::optional<double> recorded_cpu() const {
    if (recorded_ == nullptr || recorded_->steady_cpu_ms <= 0) return std::nullopt;
    return recorded_->steady_cpu_ms;
  }
  std::optional<double> recorded_wall() const {
    if (recorded_ == nullptr) return std::nullopt;
    return recorded_->steady_ms;
  }

  void finish(WarmState state, const char* result) {
    s_.state = state;
    s_.result = result;
    s_.holds_gate = false;
    worker_.report(s_);
  }

  // The outcome; an empty optional inside when the deadline passed (or the worker stopped);
  // nullopt when the request was left running (waiting on the app).
  std::optional<std::optional<Flight::Outcome>> send(const ThreadCpu* cpu,
                                                     Clock::time_point deadline) {
    if (after_gate_ && !worker_.wait_idle(deadline)) return std::optional<Flight::Outcome>();
    long left = ms_left(deadline);
    if (left <= 0 || worker_.stopped()) return std::optional<Flight::Outcome>();
    ++s_.attempts;
    Flight flight(worker_, target_.base_url + s_.path, std::min(left, kMaxAttemptMs), meter_);
    auto late = [this_status = s_, &worker = worker_](const Flight::Outcome& out) mutable {
      this_status.result = "waiting";
      this_status.holds_gate = false;
      if (out.response) this_status.last_status = out.response->status;
      bool ok = out.response && is_ok(out.response->status);
      if (ok) {
        this_status.last_ms = out.ms;
        if (this_status.first_ms == 0) this_status.first_ms = out.ms;
      }
      this_status.state = ok || this_status.first_ms > 0 ? WarmState::kOk : WarmState::kFailed;
      if (!out.response) this_status.last_error = out.response.error().message;
      worker.report(this_status);
    };
    auto outcome = flight.wait(cpu, worker_, late);
    if (!outcome) {
      s_.result = "waiting";
      s_.holds_gate = false;
      worker_.report(s_);
      return std::nullopt;
    }
    if (outcome->response) {
      s_.last_status = outcome->response->status;
      worker_.server_answered = true;
    }
    return std::optional<Flight::Outcome>(std::move(*outcome));
  }

  Worker& worker_;
  const Target& target_;
  const WarmRecordPath* recorded_;
  bool after_gate_;
  const ThreadCpu* meter_;
  ConvergenceRule rule_;
  WarmPathStatus s_;
  std::vector<double> latencies_;
  std::vector<double> cpu_;
};

std::optional<RouteDiscovery> discover(Worker& worker, const std::string& app_dir) {
  auto found = discover_routes(app_dir);
  if (!found) {
    worker.log("warn", "--warm-path auto: " + found.error().message +
                           "; only the critical paths are warmed");
    return std::nullopt;
  }
  return std::move(*found);
}

// Without --warm-path: the build's critical paths, chosen among the routes --warm-skip leaves.
std::vector<std::string> choose_critical(Worker& worker, RouteDiscovery found,
                                         const std::vector<std::string>& skip) {
  std::erase_if(found.routes, [&](const DiscoveredRoute& r) { return warm_skipped(skip, r.path); });
  auto critical = auto_critical_paths(found);
  auto root = std::find_if(found.routes.begin(), found.routes.end(),
                           [](const DiscoveredRoute& r) { return r.route == "/"; });
  std::string joined;
  for (const auto& p : critical) joined += (joined.empty() ? "" : " ") + p;
  std::string why;
  if (root != found.routes.end() && !root->per_request && critical.size() > 1) {
    why = fmt::format(" ({} is prerendered; {} renders per request)", root->path, critical[1]);
  }
  worker.log("info", fmt::format("--warm-path auto: critical paths {}{}", joined, why));
  return critical;
}

std::optional<WarmRecord> load_record(Worker& worker, const std::string& app_dir) {
  auto loaded = load_warm_record(app_dir, read_build_id(app_dir));
  if (!loaded) {
    worker.log("info", "warm-up record ignored: " + loaded.error().message);
    return std::nullopt;
  }
  return *loaded;
}

// The lower of the last two, and of the one recorded before (0: none); 0 for no values.
double steady_of(const std::vector<double>& values, double before) {
  if (values.empty()) return 0;
  double steady = values.size() >= 2 ? std::min(values.end()[-1], values.end()[-2]) : values.back();
  return before > 0 ? std::min(steady, before) : steady;
}

// The check run of --prewarm finds the first run's record: each path keeps the lower steady
// latency of the two (a noisy run does not raise the target).
void write_record(Worker& worker, const std::string& app_dir, const WarmPlanInput& in,
                  const std::vector<std::string>& discovered,
                  const std::optional<WarmRecord>& previous,
                  const std::vector<std::unique_ptr<PathWarmer>>& warmed) {
  WarmRecord record;
  record.build_id = read_build_id(app_dir);
  record.routes = discovered;
  for (const auto& w : warmed) {
    const auto& s = w->status();
    if (s.state != WarmState::kOk || w->latencies().empty() || s.result == "waiting") continue;
    bool critical = asked_for(in, s.path);
    const WarmRecordPath* before = previous ? previous->find(s.path) : nullptr;
    WarmRecordPath p{s.path, steady_of(w->latencies(), before ? before->steady_ms : 0),
                     static_cast<int>(w->latencies().size()), critical};
    p.steady_cpu_ms = steady_of(w->cpu_costs(), before ? before->steady_cpu_ms : 0);
    record.paths.push_back(std::move(p));
  }
  std::string path = warm_record_path_for(app_dir);
  if (auto written = write_file_atomically(path, format_warm_record(record)); !written) {
    worker.log("warn", "warm-up record not written: " + written.error().message);
    return;
  }
  worker.log("info", fmt::format("warm-up record: {} paths, {} routes in {}", record.paths.size(),
                                 record.routes.size(), path));
}

// A path warmed after the gate: a deferred critical path (reported as critical) or a route.
struct AfterGate {
  std::string path;
  bool background = true;
};

void warm_background(Worker& worker, const Target& target, const std::vector<AfterGate>& paths,
                     const std::optional<WarmRecord>& record, const ThreadCpu* meter) {
  auto budget = worker.wait_background();
  if (!budget) return;
  if (*budget <= 0 || paths.empty()) {
    worker.emit(fmt::format("bgdone\t0\t{}\t{}\n", paths.size(), *budget <= 0 ? "off" : "done"));
    return;
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(*budget);
  size_t warmed = 0;
  std::string reason = "done";
  NodeRss rss(target.node_pid);
  std::optional<uint64_t> rss_base;
  uint64_t rss_cap = 0;
  for (const auto& [path, background] : paths) {
    if (Clock::now() >= deadline) {
      reason = "budget";
      break;
    }
    if (worker.stopped()) {
      reason = "stopped";
      break;
    }
    if (background && !rss_base) {
      // Routes are rendered only after Next's own preload has loaded every route (loading
      // costs far less than rendering), and only while node stays within the memory budget.
      if (!worker.wait_preloaded(deadline)) {
        reason = worker.stopped() ? "stopped" : "budget";
        break;
      }
      rss_base = rss.bytes().value_or(0);
      rss_cap = *rss_base + kMaxRssGrowthBytes;
      if (auto limit = cgroup_memory_limit()) rss_cap = std::min(rss_cap, *limit / 2);
    }
    if (background && *rss_base > 0) {
      auto now = rss.bytes().value_or(0);
      if (now > rss_cap) {
        worker.log("info",
                   fmt::format("background warming stopped at node's memory budget: RSS "
                               "{} MiB, over {} MiB ({} MiB when background rendering "
                               "began; {} of {} routes warmed)",
                               now >> 20, rss_cap >> 20, *rss_base >> 20, warmed, paths.size()));
        reason = "memory";
        break;
      }
    }
    const WarmRecordPath* known = record ? record->find(path) : nullptr;
    PathWarmer warmer(worker, target, path, background, known, true, meter);
    warmer.run(deadline);
    // A deferred critical path's failure is the launcher's to log (as before the gate).
    if (background && warmer.status().state == WarmState::kFailed &&
        warmer.status().last_status != 0) {
      worker.log("info", fmt::format("background warm-up of {} answered HTTP {}; not retried", path,
                                     warmer.status().last_status));
    }
    ++warmed;
  }
  worker.emit(fmt::format("bgdone\t{}\t{}\t{}\n", warmed, paths.size(), reason));
}

}  // namespace

int run_warm_worker(const std::vector<std::string>& args) {
  auto options = parse_options(args);
  if (!options) {
    std::fprintf(stderr, "knext-launch: warm-up worker: bad arguments\n");
    return 2;
  }
  if (const char* text = std::getenv("PORT")) {
    if (auto port = parse_port(text)) avoid_local_port(*port);
  }
  Worker worker;
  worker.wait_needs_answer = options->wait_needs_answer;
  // Load libcurl and read the build's manifests now, while node is still booting.
  if (auto api = curl_api(); !api) {
    worker.log("warn", "warm-up: " + api.error().message);
    return 1;
  }
  std::error_code ec;
  std::string app_dir = std::filesystem::current_path(ec).string();
  WarmPlanInput in;
  in.explicit_paths = options->paths;
  in.auto_mode = options->auto_mode;
  in.bake = options->bake;
  in.skip = options->skip;
  in.hold_first = options->hold_first;
  in.learned = options->learned;
  if (in.auto_mode) {
    if (auto found = discover(worker, app_dir)) {
      for (const auto& r : found->routes) in.discovered.push_back(r.path);
      if (in.explicit_paths.empty()) in.auto_critical = choose_critical(worker, *found, in.skip);
    }
  }
  auto record = load_record(worker, app_dir);
  WarmPlan plan = plan_warm_paths(in, record);
  auto report_pending = [&](const std::string& path, bool background, bool holds_gate) {
    WarmPathStatus s;
    s.path = path;
    s.background = background;
    s.holds_gate = holds_gate;
    worker.report(s);
  };
  for (const auto& p : plan.critical) {
    report_pending(p, in.bake && !asked_for(in, p), true);  // at --prewarm: a discovered route
  }
  for (const auto& p : plan.deferred) report_pending(p, false, false);
  for (const auto& p : plan.background) report_pending(p, true, false);

  CommandLines lines(STDIN_FILENO);
  auto line = lines.next();
  if (!line) return 0;  // the launcher no longer needs us
  std::istringstream go(*line);
  std::string word, host;
  int port = 0;
  long timeout_ms = 0;
  Target target;
  if (!(go >> word >> host >> port >> timeout_ms >> target.cap >> target.node_pid) ||
      word != "go") {
    return 2;
  }
  std::string authority = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  target.base_url = fmt::format("http://{}:{}", authority, port);
  target.deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  // The launcher writes busy/idle until it sees our stdout close, so the reader is stopped and
  // joined before `worker` goes away.
  struct CommandThread {
    CommandLines& lines;
    std::thread thread;
    ~CommandThread() {
      lines.stop();
      thread.join();
    }
  } commands{lines, std::thread([&] { worker.read_commands(lines); })};

  ThreadCpu cpu(target.node_pid);
  std::vector<std::unique_ptr<PathWarmer>> warmed;
  for (const auto& path : plan.critical) {
    const WarmRecordPath* known = record ? record->find(path) : nullptr;
    // At --prewarm the discovered routes are warmed before the gate too, but only the asked-for
    // paths (or /) decide whether warm-up failed.
    bool asked = !in.bake || asked_for(in, path);
    warmed.push_back(std::make_unique<PathWarmer>(worker, target, path, !asked, known, false,
                                                  cpu.usable() ? &cpu : nullptr));
    warmed.back()->run(target.deadline);
  }
  if (in.bake) write_record(worker, app_dir, in, in.discovered, record, warmed);
  worker.emit("gate\n");

  // After the gate: first the deferred critical paths; then, as repeats now cost no user's wait,
  // critical paths that stopped because one more repeat would not have paid before the gate go
  // on until they agree; then the other routes.
  std::vector<AfterGate> after_gate;
  for (const auto& p : plan.deferred) after_gate.push_back({p, false});
  for (const auto& w : warmed) {
    const auto& st = w->status();
    if (st.state == WarmState::kOk && (st.result == "not-paying" || st.result == "no-gain")) {
      after_gate.push_back({st.path, true});
    }
  }
  for (const auto& p : plan.background) after_gate.push_back({p, true});
  warm_background(worker, target, after_gate, record, cpu.usable() ? &cpu : nullptr);
  for (auto& t : worker.left_running) t.join();
  return 0;
}

}  // namespace knext
