#include "probes/warm/warmup.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/fd.hpp"
#include "common/self_exe.hpp"
#include "common/spawn.hpp"
#include "probes/warm/warm_worker.hpp"

namespace knext {

WarmUp::WarmUp(uv_loop_t* loop, std::vector<std::string> worker_args)
    : loop_(loop), args_(std::move(worker_args)) {}

WarmUp::~WarmUp() {
  cancel();
}

Status WarmUp::prepare(Callbacks callbacks) {
  callbacks_ = std::move(callbacks);
  active_ = true;
  int in_fds[2];
  int out_fds[2];
  if (pipe2(in_fds, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno)};
  Fd in_read(in_fds[0]);
  Fd in_write(in_fds[1]);
  if (pipe2(out_fds, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno)};
  Fd out_read(out_fds[0]);
  Fd out_write(out_fds[1]);

  auto uv_failed = [](int rc) {
    return Error{std::string("warm-up worker pipe: ") + uv_strerror(rc)};
  };
  if (int rc = uv_pipe_init(loop_, to_worker_.get(), 0); rc != 0) return uv_failed(rc);
  to_worker_.mark_initialized();
  if (int rc = uv_pipe_init(loop_, from_worker_.get(), 0); rc != 0) return uv_failed(rc);
  from_worker_.mark_initialized();

  SpawnRequest request;
  request.argv = {self_command(), std::string(kWarmWorkerFlag)};
  request.argv.insert(request.argv.end(), args_.begin(), args_.end());
  request.env = env_ ? *env_ : current_environment();
  request.stdin_fd = in_read.get();
  request.stdout_fd = out_write.get();
  request.run_as = run_as_;
  auto pid = spawn_child(request);
  if (!pid) return Error{"warm-up worker: " + pid.error().message};
  worker_ = *pid;

  // On a failure here the destructor's cancel() kills the worker.
  if (int rc = uv_pipe_open(to_worker_.get(), in_write.get()); rc != 0) return uv_failed(rc);
  in_write.release();  // the pipe owns it now
  if (int rc = uv_pipe_open(from_worker_.get(), out_read.get()); rc != 0) return uv_failed(rc);
  out_read.release();
  from_worker_.get()->data = this;
  int reading = uv_read_start(
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
  if (reading != 0) return uv_failed(reading);
  return ok_status();
}

// Blocking writes of short lines into a pipe the worker drains: cannot stall the loop.
void WarmUp::send(const std::string& line) {
  if (worker_ <= 0 || to_worker_.get() == nullptr) return;
  uv_os_fd_t fd = -1;
  if (uv_fileno(to_worker_.base(), &fd) != 0) return;
  ssize_t ignored = write(fd, line.data(), line.size());
  (void)ignored;
}

void WarmUp::start(const std::string& host, int port, std::chrono::milliseconds timeout, int repeat,
                   pid_t node_pid) {
  if (worker_ <= 0) {
    fail_holding("warm-up worker not running");
    return;
  }
  send(fmt::format("go {} {} {} {} {}\n", host, port, std::max<long long>(timeout.count(), 1),
                   std::max(repeat, 1), std::max(node_pid, 0)));
}

void WarmUp::start_background(std::chrono::milliseconds budget, bool after_preload) {
  send(fmt::format("bg {}{}\n", std::max<long long>(budget.count(), 0),
                   after_preload ? " after-preload" : ""));
}

void WarmUp::preloaded() {
  send("preloaded\n");
}

void WarmUp::set_busy(bool busy) {
  send(busy ? "busy\n" : "idle\n");
}

void WarmUp::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (!active_) return;
  if (nread < 0) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(from_worker_.get()));
    worker_ = -1;  // it exits by itself now; never signal a pid that may be reused
    fail_holding("warm-up worker exited early");
    if (!background_done_ && callbacks_.on_background_done) {
      background_done_ = true;
      callbacks_.on_background_done(0, 0, "stopped");
    }
    return;
  }
  buffer_.append(buf->base, static_cast<size_t>(nread));
  for (size_t nl; active_ && (nl = buffer_.find('\n')) != std::string::npos;) {
    std::string line = buffer_.substr(0, nl);
    buffer_.erase(0, nl + 1);
    on_line(line);
  }
}

void WarmUp::on_line(std::string_view line) {
  if (line == "gate") {
    holding_.clear();
    if (!gate_reported_ && callbacks_.on_gate) {
      gate_reported_ = true;
      callbacks_.on_gate();
    }
    return;
  }
  auto field = [&line](size_t n) {
    std::string_view rest = line;
    for (size_t i = 0; i < n; ++i) {
      auto tab = rest.find('\t');
      if (tab == std::string_view::npos) return std::string_view();
      rest.remove_prefix(tab + 1);
    }
    return rest.substr(0, rest.find('\t'));
  };
  if (line.rfind("log\t", 0) == 0) {
    if (callbacks_.on_log) {
      std::string_view text = line.substr(4);
      auto tab = text.find('\t');
      if (tab != std::string_view::npos) {
        callbacks_.on_log(std::string(text.substr(0, tab)), std::string(text.substr(tab + 1)));
      }
    }
    return;
  }
  if (line.rfind("bgdone\t", 0) == 0) {
    background_done_ = true;
    if (callbacks_.on_background_done) {
      auto number = [](std::string_view v) {
        return static_cast<size_t>(std::atol(std::string(v).c_str()));
      };
      callbacks_.on_background_done(number(field(1)), number(field(2)), std::string(field(3)));
    }
    return;
  }
  auto result = parse_warm_result(line);
  if (!result) return;
  if (!result->background) named_critical_ = true;
  auto known = std::find_if(holding_.begin(), holding_.end(),
                            [&](const WarmPathStatus& s) { return s.path == result->path; });
  if (!result->background && result->holds_gate && known == holding_.end()) {
    holding_.push_back(*result);
  } else if (known != holding_.end()) {
    if (result->holds_gate) {
      *known = *result;
    } else {
      holding_.erase(known);
    }
  }
  if (callbacks_.on_path) callbacks_.on_path(*result);
}

void WarmUp::fail_holding(const std::string& why) {
  // Without --warm-path the launcher knows no critical path of its own to report as failed.
  if (!named_critical_ && !gate_reported_ && callbacks_.on_log) {
    callbacks_.on_log("warn", why + " before naming a critical path; nothing was warmed");
  }
  auto holding = std::exchange(holding_, {});
  for (auto& s : holding) {
    s.state = WarmState::kFailed;
    s.holds_gate = false;
    s.last_error = why;
    if (callbacks_.on_path) callbacks_.on_path(s);
  }
  if (!gate_reported_ && callbacks_.on_gate) {
    gate_reported_ = true;
    callbacks_.on_gate();
  }
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
