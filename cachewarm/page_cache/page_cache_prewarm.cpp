#include "cachewarm/page_cache/page_cache_prewarm.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "common/clock.hpp"
#include "common/fd.hpp"

namespace knext {
namespace {

constexpr size_t kChunkBytes = 256u << 10;

}  // namespace

std::vector<PrewarmTarget> whole_files(std::vector<std::string> paths) {
  std::vector<PrewarmTarget> targets;
  targets.reserve(paths.size());
  for (auto& path : paths) targets.push_back({std::move(path), {}});
  return targets;
}

const char* prewarm_method_name(PrewarmMethod method) {
  switch (method) {
    case PrewarmMethod::kRead:
      return "read";
    case PrewarmMethod::kAdvise:
      return "advise";
  }
  return "?";
}

struct PageCachePrewarm::State {
  uv_loop_t* loop;
  PrewarmOptions options;
  // Shared with the lanes: `targets` is written once on the loop thread before any lane is
  // queued (uv_queue_work orders it) and only read afterwards.
  std::vector<PrewarmTarget> targets;
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> budget_left{0};
  std::atomic<bool> cancelled{false};
  // Loop thread only.
  Done on_done;
  SteadyClock::time_point t0;
  std::vector<uv_work_t*> pending;  // queued or running
  PrewarmReport report;
  bool started = false;
  bool finished = false;
};

struct PageCachePrewarm::Job {
  uv_work_t req{};
  std::shared_ptr<State> state;
  TargetSource source;                  // the list job only
  std::vector<PrewarmTarget> produced;  // its result
  PrewarmReport lane;                   // a lane's counts
};

namespace {

// Takes `size` bytes from the budget if they fit.
bool reserve(std::atomic<uint64_t>& budget_left, uint64_t size) {
  uint64_t left = budget_left.load(std::memory_order_relaxed);
  do {
    if (size > left) return false;
  } while (!budget_left.compare_exchange_weak(left, left - size, std::memory_order_relaxed));
  return true;
}

// The ranges to warm, clipped to the file's size; the whole file when none were given.
std::vector<ByteRange> clipped(const std::vector<ByteRange>& ranges, uint64_t size) {
  if (ranges.empty()) return {{0, size}};
  std::vector<ByteRange> out;
  for (const auto& r : ranges) {
    if (r.offset >= size) continue;
    out.push_back({r.offset, std::min(r.length, size - r.offset)});
  }
  return out;
}

// Reads [r.offset, r.offset + r.length) through `buffer`; false on a read error.
bool read_range(int fd, const ByteRange& r, const std::atomic<bool>& cancelled, char* buffer,
                uint64_t& bytes) {
  uint64_t offset = r.offset;
  uint64_t end = r.offset + r.length;
  while (offset < end) {
    if (cancelled.load(std::memory_order_relaxed)) return true;
    size_t want = static_cast<size_t>(std::min<uint64_t>(kChunkBytes, end - offset));
    ssize_t n = pread(fd, buffer, want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;  // shrank meanwhile
    offset += static_cast<uint64_t>(n);
    bytes += static_cast<uint64_t>(n);
  }
  return true;
}

// One target, on a thread-pool thread. `buffer` is the lane's scratch space (kRead).
void prewarm_one(const PrewarmTarget& target, const std::atomic<bool>& cancelled,
                 std::atomic<uint64_t>& budget_left, PrewarmMethod method, char* buffer,
                 PrewarmReport& r) {
  // O_NONBLOCK: a FIFO put where a file was listed must not hang the lane.
  Fd fd(open(target.path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (!fd.valid() || fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    ++r.failed;
    return;
  }
  auto ranges = clipped(target.ranges, static_cast<uint64_t>(st.st_size));
  uint64_t total = 0;
  for (const auto& range : ranges) total += range.length;
  if (!reserve(budget_left, total)) {
    ++r.skipped;
    return;
  }
  for (const auto& range : ranges) {
    if (method == PrewarmMethod::kAdvise) {
      if (posix_fadvise(fd.get(), static_cast<off_t>(range.offset),
                        static_cast<off_t>(range.length), POSIX_FADV_WILLNEED) != 0) {
        ++r.failed;
        return;
      }
      r.bytes += range.length;
    } else if (!read_range(fd.get(), range, cancelled, buffer, r.bytes)) {
      ++r.failed;
      return;
    }
    if (cancelled.load(std::memory_order_relaxed)) return;
  }
  ++r.files;
}

void add_counts(PrewarmReport& into, const PrewarmReport& from) {
  into.files += from.files;
  into.bytes += from.bytes;
  into.skipped += from.skipped;
  into.failed += from.failed;
}

}  // namespace

PageCachePrewarm::PageCachePrewarm(uv_loop_t* loop, PrewarmOptions options)
    : state_(std::make_shared<State>()) {
  state_->loop = loop;
  state_->options = std::move(options);
  state_->options.parallelism = std::max<size_t>(1, state_->options.parallelism);
  state_->budget_left = state_->options.byte_budget;
}

PageCachePrewarm::~PageCachePrewarm() {
  cancel();
  state_->on_done = nullptr;
}

void PageCachePrewarm::start(std::vector<PrewarmTarget> targets, Done on_done) {
  if (state_->started) return;
  state_->started = true;
  state_->t0 = SteadyClock::now();
  state_->on_done = std::move(on_done);
  state_->targets = std::move(targets);
  launch_lanes(state_);
}

void PageCachePrewarm::start(TargetSource source, Done on_done) {
  if (state_->started) return;
  state_->started = true;
  state_->t0 = SteadyClock::now();
  state_->on_done = std::move(on_done);
  auto job = std::make_unique<Job>();
  job->state = state_;
  job->source = std::move(source);
  job->req.data = job.get();
  if (uv_queue_work(state_->loop, &job->req, &PageCachePrewarm::make_list,
                    &PageCachePrewarm::after_job) == 0) {
    state_->pending.push_back(&job->req);
    job.release();  // after_job owns it now
  } else {
    launch_lanes(state_);  // with no files: one lane that reports nothing, asynchronously
  }
}

void PageCachePrewarm::launch_lanes(const std::shared_ptr<State>& state) {
  // At least one lane even for an empty list, so on_done always runs from the loop.
  size_t lanes = std::clamp<size_t>(state->targets.size(), 1, state->options.parallelism);
  for (size_t i = 0; i < lanes; ++i) {
    auto job = std::make_unique<Job>();
    job->state = state;
    job->req.data = job.get();
    if (uv_queue_work(state->loop, &job->req, &PageCachePrewarm::run_lane,
                      &PageCachePrewarm::after_job) != 0) {
      continue;  // only for invalid arguments; the other lanes still run
    }
    state->pending.push_back(&job->req);
    job.release();  // after_job owns it now
  }
}

void PageCachePrewarm::make_list(uv_work_t* req) {
  auto* job = static_cast<Job*>(req->data);
  // An exception must not escape onto a thread-pool thread: that would end PID 1.
  try {
    job->produced = job->source();
  } catch (...) {
    job->produced.clear();
    ++job->lane.failed;
  }
}

void PageCachePrewarm::run_lane(uv_work_t* req) {
  auto* job = static_cast<Job*>(req->data);
  State& s = *job->state;
  std::unique_ptr<char[]> buffer;
  if (s.options.method == PrewarmMethod::kRead) buffer = std::make_unique<char[]>(kChunkBytes);
  while (!s.cancelled.load(std::memory_order_relaxed)) {
    size_t index = s.next.fetch_add(1, std::memory_order_relaxed);
    if (index >= s.targets.size()) break;
    if (s.options.observer) s.options.observer(index, true);
    prewarm_one(s.targets[index], s.cancelled, s.budget_left, s.options.method, buffer.get(),
                job->lane);
    if (s.options.observer) s.options.observer(index, false);
  }
}

void PageCachePrewarm::after_job(uv_work_t* req, int status) {
  std::unique_ptr<Job> job(static_cast<Job*>(req->data));
  std::shared_ptr<State> state = job->state;
  auto& pending = state->pending;
  pending.erase(std::remove(pending.begin(), pending.end(), req), pending.end());
  add_counts(state->report, job->lane);
  if (job->source && status == 0 && !state->cancelled) {
    state->targets = std::move(job->produced);
    launch_lanes(state);
  }
  if (!pending.empty() || state->finished) return;
  state->finished = true;
  state->report.ms = ms_between(state->t0, SteadyClock::now());
  state->report.cancelled = state->cancelled;
  if (Done done = std::move(state->on_done)) done(state->report);
}

void PageCachePrewarm::cancel() {
  state_->cancelled = true;
  // Jobs still waiting for a thread end at once (after_job gets UV_ECANCELED); running ones
  // refuse with UV_EBUSY and stop at their next check.
  for (uv_work_t* req : std::vector<uv_work_t*>(state_->pending)) {
    uv_cancel(reinterpret_cast<uv_req_t*>(req));
  }
}

bool PageCachePrewarm::running() const {
  return state_->started && !state_->finished;
}

}  // namespace knext
