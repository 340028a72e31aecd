#include "probes/warmup.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "common/fd.hpp"
#include "common/self_exe.hpp"
#include "launcher/spawn.hpp"
#include "probes/warm_worker.hpp"

namespace knext {

WarmUp::WarmUp(uv_loop_t* loop, std::vector<std::string> paths)
    : loop_(loop), paths_(std::move(paths)) {}

WarmUp::~WarmUp() {
  cancel();
}

Status WarmUp::prepare() {
  int in_fds[2];
  int out_fds[2];
  if (pipe2(in_fds, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno)};
  Fd in_read(in_fds[0]);
  Fd in_write(in_fds[1]);
  if (pipe2(out_fds, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno)};
  Fd out_read(out_fds[0]);
  Fd out_write(out_fds[1]);

  SpawnRequest request;
  request.argv = {self_command(), std::string(kWarmWorkerFlag)};
  request.argv.insert(request.argv.end(), paths_.begin(), paths_.end());
  request.env = current_environment();
  request.stdin_fd = in_read.get();
  request.stdout_fd = out_write.get();
  request.run_as = run_as_;
  auto pid = spawn_child(request);
  if (!pid) return Error{"warm-up worker: " + pid.error().message};
  worker_ = *pid;

  uv_pipe_init(loop_, to_worker_.get(), 0);
  to_worker_.mark_initialized();
  uv_pipe_open(to_worker_.get(), in_write.release());
  uv_pipe_init(loop_, from_worker_.get(), 0);
  from_worker_.mark_initialized();
  uv_pipe_open(from_worker_.get(), out_read.release());
  from_worker_.get()->data = this;
  return ok_status();
}

void WarmUp::start(const std::string& host, int port, std::chrono::milliseconds timeout, int repeat,
                   OnPath on_path, OnDone on_done) {
  on_path_ = std::move(on_path);
  on_done_ = std::move(on_done);
  remaining_ = paths_.size();
  active_ = true;
  if (worker_ <= 0) {
    finish_all_failed("warm-up worker not running");
    return;
  }
  // Blocking write of one short line into an empty pipe: cannot stall the loop.
  std::string go = fmt::format("{} {} {} {}\n", host, port, std::max<long long>(timeout.count(), 1),
                               std::max(repeat, 1));
  uv_os_fd_t fd = -1;
  uv_fileno(to_worker_.base(), &fd);
  if (write(fd, go.data(), go.size()) != static_cast<ssize_t>(go.size())) {
    finish_all_failed("cannot reach the warm-up worker");
    return;
  }
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(from_worker_.get()),
      [](uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
        auto* self = static_cast<WarmUp*>(h->data);
        if (self == nullptr) {
          *buf = uv_buf_init(nullptr, 0);  // cancelled: libuv then reports UV_ENOBUFS
          return;
        }
        self->read_storage_.resize(suggested);
        *buf = uv_buf_init(self->read_storage_.data(), static_cast<unsigned>(suggested));
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        if (auto* self = static_cast<WarmUp*>(s->data)) self->on_read(nread, buf);
      });
}

void WarmUp::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (!active_) return;
  if (nread < 0) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(from_worker_.get()));
    worker_ = -1;
    if (remaining_ > 0) finish_all_failed("warm-up worker exited early");
    return;
  }
  buffer_.append(buf->base, static_cast<size_t>(nread));
  for (size_t nl; active_ && (nl = buffer_.find('\n')) != std::string::npos;) {
    auto result = parse_warm_result(std::string_view(buffer_).substr(0, nl));
    buffer_.erase(0, nl + 1);
    if (!result) continue;
    if (result->state != WarmState::kOk) all_ok_ = false;
    --remaining_;
    if (on_path_) on_path_(*result);
    if (remaining_ == 0) {
      active_ = false;
      worker_ = -1;  // it exits by itself now; never signal a pid that may be reused
      if (on_done_) on_done_(all_ok_);
    }
  }
}

void WarmUp::finish_all_failed(const std::string& why) {
  active_ = false;
  for (const auto& path : paths_) {
    WarmPathStatus s;
    s.path = path;
    s.state = WarmState::kFailed;
    s.last_error = why;
    if (on_path_) on_path_(s);
  }
  if (on_done_) on_done_(false);
}

void WarmUp::cancel() {
  active_ = false;
  if (from_worker_.get() != nullptr) {
    from_worker_.get()->data = nullptr;
    if (uv_is_active(from_worker_.base())) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(from_worker_.get()));
    }
  }
  if (worker_ > 0) {
    // The launcher's reaper collects it.
    kill(worker_, SIGKILL);
    worker_ = -1;
  }
}

}  // namespace knext
