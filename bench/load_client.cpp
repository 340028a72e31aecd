#include "bench/load_client.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "probes/http/curl_api.hpp"

namespace knext::bench {
namespace {

using namespace std::chrono_literals;

constexpr auto kTick = 1s;
constexpr auto kAlivePoll = 50ms;
constexpr auto kMaxPollWait = 100ms;

enum class Kind { kOk, kNon2xx, kReset, kTimeout, kRefused, kOther };

Kind classify(CURLcode rc, long status) {
  switch (rc) {
    case CURLE_OK:
      return status >= 200 && status < 300 ? Kind::kOk : Kind::kNon2xx;
    case CURLE_COULDNT_CONNECT:
      return Kind::kRefused;
    case CURLE_OPERATION_TIMEDOUT:
      return Kind::kTimeout;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return Kind::kReset;
    default:
      return Kind::kOther;
  }
}

void count(FailureCounts& counts, Kind kind) {
  switch (kind) {
    case Kind::kOk:
      break;
    case Kind::kNon2xx:
      ++counts.non_2xx;
      break;
    case Kind::kReset:
      ++counts.reset;
      break;
    case Kind::kTimeout:
      ++counts.timeout;
      break;
    case Kind::kRefused:
      ++counts.refused;
      break;
    case Kind::kOther:
      ++counts.other;
      break;
  }
}

size_t discard_body(char*, size_t size, size_t count, void*) {
  return size * count;
}

// CURLOPT_PREREQFUNCTION: the connection is up and the request is about to be written.
int mark_sent(void* sent, char*, char*, int, int) {
  *static_cast<bool*>(sent) = true;
  return CURL_PREREQFUNC_OK;
}

using EasyPtr = std::unique_ptr<CURL, void (*)(CURL*)>;
using MultiPtr = std::unique_ptr<CURLM, CURLMcode (*)(CURLM*)>;

// One keep-alive connection's worth of requests: its easy handle is reused for each.
struct Slot {
  explicit Slot(EasyPtr e) : easy(std::move(e)) {}
  EasyPtr easy;
  std::string path;
  std::string url;
  size_t index = 0;
  SteadyClock::time_point started;
  std::optional<SteadyClock::time_point> retry_at;
  long held_retries = 0;
  bool in_multi = false;
  bool sent = false;  // this request's bytes are going out (set by mark_sent)
  bool had_ok = false;
  bool at_stop = false;  // in flight when the stop point came
  char error[CURL_ERROR_SIZE] = {};
};

class LoadRun {
 public:
  LoadRun(const CurlApi& c, const LoadPlan& plan, const LoadHooks& hooks)
      : c_(c), plan_(plan), hooks_(hooks), multi_(nullptr, c.multi_cleanup) {}
  // Handles leave the multi before either is cleaned up, as libcurl requires.
  ~LoadRun() {
    for (auto& slot : slots_) {
      if (slot.in_multi) c_.multi_remove_handle(multi_.get(), slot.easy.get());
    }
  }
  LoadRun(const LoadRun&) = delete;
  LoadRun& operator=(const LoadRun&) = delete;

  Status init();
  Expected<LoadResult> run();

 private:
  Status add(Slot& slot);
  Status start_next(Slot& slot);
  Status launch_idle();
  Status perform();
  void read_messages();
  void finish(Slot& slot, CURLcode rc);
  void begin_stop();
  bool all_sent() const;
  void note_ok(Slot& slot, SteadyClock::time_point now);
  long in_flight() const;
  long held() const;
  int poll_wait_ms(SteadyClock::time_point now) const;

  const CurlApi& c_;
  const LoadPlan& plan_;
  const LoadHooks& hooks_;
  MultiPtr multi_;
  std::vector<Slot> slots_;
  LoadResult result_;
  long next_request_ = 0;
  long finished_ = 0;
  bool stopping_ = false;
  bool prereq_ = false;  // libcurl (7.80+) tells when a request goes out
};

Status LoadRun::init() {
  multi_.reset(c_.multi_init());
  if (!multi_) return Error{"curl_multi_init failed"};
  long connections = plan_.concurrency;
  c_.multi_setopt(multi_.get(), CURLMOPT_MAX_TOTAL_CONNECTIONS, connections);
  c_.multi_setopt(multi_.get(), CURLMOPT_MAXCONNECTS, connections);
  auto count = static_cast<size_t>(std::min<long>(plan_.concurrency, plan_.requests));
  slots_.reserve(count);  // CURLOPT_PRIVATE points into it: never reallocated
  for (size_t i = 0; i < count; ++i) {
    EasyPtr easy(c_.easy_init(), c_.easy_cleanup);
    if (!easy) return Error{"curl_easy_init failed"};
    Slot& slot = slots_.emplace_back(std::move(easy));
    slot.index = i;
    CURL* e = slot.easy.get();
    prereq_ = c_.easy_setopt(e, CURLOPT_PREREQFUNCTION, mark_sent) == CURLE_OK &&
              c_.easy_setopt(e, CURLOPT_PREREQDATA, &slot.sent) == CURLE_OK;
    c_.easy_setopt(e, CURLOPT_PRIVATE, &slot);
    c_.easy_setopt(e, CURLOPT_ERRORBUFFER, slot.error);
    c_.easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(plan_.request_timeout.count()));
    c_.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    c_.easy_setopt(e, CURLOPT_PROXY, "");  // never an http_proxy from the environment
    c_.easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
  }
  result_.latencies_ms.reserve(static_cast<size_t>(plan_.requests));
  result_.ok_done.reserve(static_cast<size_t>(plan_.requests));
  result_.connections.resize(count);
  return ok_status();
}

Status LoadRun::add(Slot& slot) {
  slot.retry_at.reset();
  slot.error[0] = '\0';
  slot.sent = !prereq_;  // without the callback, a started request counts as sent
  CURLMcode rc = c_.multi_add_handle(multi_.get(), slot.easy.get());
  if (rc != CURLM_OK) return Error{std::string("curl_multi_add_handle: ") + c_.multi_strerror(rc)};
  slot.in_multi = true;
  return ok_status();
}

Status LoadRun::start_next(Slot& slot) {
  slot.path =
      plan_.paths[static_cast<size_t>(next_request_ % static_cast<long>(plan_.paths.size()))];
  slot.url = plan_.base_url + slot.path;
  ++next_request_;
  ++result_.sent;
  slot.started = SteadyClock::now();
  slot.held_retries = 0;
  c_.easy_setopt(slot.easy.get(), CURLOPT_URL, slot.url.c_str());
  return add(slot);
}

Status LoadRun::launch_idle() {
  auto now = SteadyClock::now();
  for (auto& slot : slots_) {
    if (slot.in_multi) continue;
    Status added = ok_status();
    if (slot.retry_at) {
      if (*slot.retry_at <= now) added = add(slot);
    } else if (next_request_ < plan_.requests) {
      added = start_next(slot);
    }
    if (!added) return added;
  }
  return ok_status();
}

Status LoadRun::perform() {
  int running = 0;
  CURLMcode rc = c_.multi_perform(multi_.get(), &running);
  if (rc != CURLM_OK) return Error{std::string("curl_multi_perform: ") + c_.multi_strerror(rc)};
  return ok_status();
}

void LoadRun::read_messages() {
  int left = 0;
  while (CURLMsg* msg = c_.multi_info_read(multi_.get(), &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Slot* slot = nullptr;
    c_.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &slot);
    CURLcode rc = msg->data.result;  // read before the handle leaves the multi
    c_.multi_remove_handle(multi_.get(), slot->easy.get());
    slot->in_multi = false;
    finish(*slot, rc);
  }
}

void LoadRun::finish(Slot& slot, CURLcode rc) {
  auto now = SteadyClock::now();
  long status = 0;
  if (rc == CURLE_OK) c_.easy_getinfo(slot.easy.get(), CURLINFO_RESPONSE_CODE, &status);
  Kind kind = classify(rc, status);
  if (kind == Kind::kRefused && !slot.had_ok && !stopping_ && now < plan_.hold_until) {
    slot.retry_at = now + plan_.hold_retry;
    ++slot.held_retries;
    return;
  }
  ++finished_;
  result_.last_finish = now;
  bool at_stop = std::exchange(slot.at_stop, false);
  if (kind == Kind::kOk) return note_ok(slot, now);
  count(at_stop ? result_.lost : result_.failed, kind);
  if (result_.first_failure.empty()) {
    std::string why = kind == Kind::kNon2xx   ? fmt::format("HTTP {}", status)
                      : slot.error[0] != '\0' ? std::string(slot.error)
                                              : std::string(c_.easy_strerror(rc));
    result_.first_failure = fmt::format("GET {}: {}", slot.path, why);
  }
}

void LoadRun::note_ok(Slot& slot, SteadyClock::time_point now) {
  ++result_.ok;
  slot.had_ok = true;
  if (!result_.first_ok) result_.first_ok = now;
  double ms = ms_between(slot.started, now);
  result_.latencies_ms.push_back(ms);
  result_.ok_done.push_back(now);
  ConnectionStats& conn = result_.connections[slot.index];
  if (++conn.requests == 1) {
    conn.first_ms = ms;
  } else {
    conn.max_later_ms = std::max(conn.max_later_ms, ms);
  }
  conn.max_ms = std::max(conn.max_ms, ms);
  if (ms <= result_.slowest.ms) return;
  auto timer_ms = [&](CURLINFO info) {
    curl_off_t us = 0;
    c_.easy_getinfo(slot.easy.get(), info, &us);
    return static_cast<double>(us) / 1000.0;
  };
  long connects = 0;
  c_.easy_getinfo(slot.easy.get(), CURLINFO_NUM_CONNECTS, &connects);
  result_.slowest = {slot.path,
                     slot.index,
                     ms,
                     ms_between(result_.started, slot.started),
                     slot.held_retries,
                     connects,
                     timer_ms(CURLINFO_CONNECT_TIME_T),
                     timer_ms(CURLINFO_STARTTRANSFER_TIME_T)};
}

bool LoadRun::all_sent() const {
  if (next_request_ < plan_.requests) return false;
  return std::all_of(slots_.begin(), slots_.end(),
                     [](const Slot& s) { return !s.retry_at && (!s.in_multi || s.sent); });
}

void LoadRun::begin_stop() {
  stopping_ = true;
  for (auto& slot : slots_) {
    slot.retry_at.reset();  // a held request not being tried right now is simply not sent
    slot.at_stop = slot.in_multi;
  }
  result_.stopped = true;
  result_.stop_time = SteadyClock::now();
  result_.finished_at_stop = finished_;
  result_.ok_at_stop = result_.ok;
  result_.in_flight_at_stop = in_flight();
  if (hooks_.on_stop) hooks_.on_stop();
}

long LoadRun::in_flight() const {
  return std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.in_multi; });
}

long LoadRun::held() const {
  return std::count_if(slots_.begin(), slots_.end(),
                       [](const Slot& s) { return s.retry_at.has_value(); });
}

int LoadRun::poll_wait_ms(SteadyClock::time_point now) const {
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(kMaxPollWait);
  for (const auto& slot : slots_) {
    if (!slot.retry_at) continue;
    auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*slot.retry_at - now);
    wait = std::clamp(until, 0ms, wait);
  }
  return static_cast<int>(wait.count());
}

Expected<LoadResult> LoadRun::run() {
  result_.started = SteadyClock::now();
  auto next_tick = result_.started + kTick;
  auto next_alive_check = SteadyClock::now();
  while (true) {
    if (!stopping_) {
      if (auto launched = launch_idle(); !launched) return launched.error();
    }
    if (auto performed = perform(); !performed) return performed.error();
    read_messages();
    if (!stopping_ && plan_.stop_when_all_sent && all_sent()) begin_stop();
    auto now = SteadyClock::now();
    if (!stopping_ && now >= next_alive_check) {
      next_alive_check = now + kAlivePoll;
      if (hooks_.target_alive && !hooks_.target_alive()) {
        stopping_ = true;
        result_.target_gone = true;
        for (auto& slot : slots_) slot.retry_at.reset();
      }
    }
    if (!result_.first_ok && now >= plan_.hold_until) {
      return Error{fmt::format("no 2xx from {} before the hold deadline", plan_.base_url)};
    }
    bool idle = in_flight() == 0 && held() == 0;
    if (idle && (stopping_ || next_request_ >= plan_.requests)) break;
    if (now >= next_tick && hooks_.on_tick) {
      next_tick = now + kTick;
      hooks_.on_tick(
          LoadProgress{finished_, result_.ok, result_.failed.total(), in_flight(), held()});
    }
    int numfds = 0;
    CURLMcode rc = c_.multi_poll(multi_.get(), nullptr, 0, poll_wait_ms(now), &numfds);
    if (rc != CURLM_OK) return Error{std::string("curl_multi_poll: ") + c_.multi_strerror(rc)};
  }
  if (!result_.first_ok) {
    return Error{result_.first_failure.empty() ? "no request got a 2xx" : result_.first_failure};
  }
  return std::move(result_);
}

}  // namespace

Expected<LoadResult> run_load(const LoadPlan& plan, const LoadHooks& hooks) {
  auto api = curl_api();
  if (!api) return api.error();
  if (!(*api)->has_multi()) return Error{"libcurl.so.4 is older than 7.66 (no curl_multi_poll)"};
  if (plan.paths.empty() || plan.requests <= 0 || plan.concurrency <= 0) {
    return Error{"nothing to request"};
  }
  LoadRun run(**api, plan, hooks);
  if (auto ready = run.init(); !ready) return ready.error();
  return run.run();
}

}  // namespace knext::bench
