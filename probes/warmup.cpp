#include "probes/warmup.hpp"

#include <fmt/format.h>

#include <thread>

#include "common/clock.hpp"
#include "probes/curl_api.hpp"

namespace knext {
namespace {
constexpr auto kRetryPause = std::chrono::milliseconds(50);
constexpr long kMaxAttemptMs = 30'000;
}  // namespace

// One path's retry loop; runs on a thread-pool thread, touches only its own fields.
struct WarmUp::Job {
  uv_work_t req{};
  WarmUp* owner = nullptr;
  std::shared_ptr<bool> owner_alive;
  std::shared_ptr<std::atomic<bool>> cancelled;
  std::string url;
  std::chrono::steady_clock::time_point deadline;
  WarmPathStatus status;
};

WarmUp::WarmUp(uv_loop_t* loop, std::vector<std::string> paths,
               std::chrono::steady_clock::time_point deadline)
    : loop_(loop), paths_(std::move(paths)), deadline_(deadline) {}

WarmUp::~WarmUp() {
  *alive_ = false;
  cancel();
}

void WarmUp::cancel() {
  cancelled_->store(true);
}

void WarmUp::start(const std::string& host, int port, OnPath on_path, OnDone on_done) {
  on_path_ = std::move(on_path);
  on_done_ = std::move(on_done);
  std::string authority = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  for (const auto& path : paths_) {
    auto job = std::make_unique<Job>();
    job->owner = this;
    job->owner_alive = alive_;
    job->cancelled = cancelled_;
    job->url = fmt::format("http://{}:{}{}", authority, port, path);
    job->deadline = deadline_;
    job->status.path = path;
    job->req.data = job.get();
    if (uv_queue_work(loop_, &job->req, work, after_work) == 0) {
      job.release();  // owned by after_work now
      ++pending_;
    }
  }
  if (pending_ == 0 && on_done_) on_done_(false);
}

void WarmUp::work(uv_work_t* req) {
  auto* job = static_cast<Job*>(req->data);
  auto& s = job->status;
  while (!job->cancelled->load()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    job->deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    ++s.attempts;
    auto response = http_get(job->url, std::min<long>(left, kMaxAttemptMs), job->cancelled.get());
    if (response) {
      s.last_status = response->status;
      s.last_error.clear();
      if (s.last_status >= 200 && s.last_status < 400) {
        s.state = WarmState::kOk;
        s.done_ms = ms_since_start();
        return;
      }
    } else {
      s.last_error = response.error().message;
    }
    std::this_thread::sleep_for(kRetryPause);
  }
  s.state = WarmState::kFailed;
  s.done_ms = ms_since_start();
}

void WarmUp::after_work(uv_work_t* req, int) {
  std::unique_ptr<Job> job(static_cast<Job*>(req->data));
  if (!*job->owner_alive) return;
  WarmUp* self = job->owner;
  --self->pending_;
  if (job->status.state != WarmState::kOk) self->all_ok_ = false;
  if (self->on_path_) self->on_path_(job->status);
  if (self->pending_ == 0 && self->on_done_) self->on_done_(self->all_ok_);
}

}  // namespace knext
