#pragma once
#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "launcher/run_as.hpp"
#include "launcher/uv_handle.hpp"
#include "probes/launch_state.hpp"

namespace knext {

// The launcher's side of warm-up: starts the worker process early (see warm_worker.hpp), hands
// it the server's address when known, and reports each path's result on the loop.
class WarmUp {
 public:
  using OnPath = std::function<void(const WarmPathStatus&)>;
  using OnDone = std::function<void(bool all_ok)>;

  WarmUp(uv_loop_t* loop, std::vector<std::string> paths);
  ~WarmUp();
  WarmUp(const WarmUp&) = delete;
  WarmUp& operator=(const WarmUp&) = delete;

  // The worker drops to this user (--user) before its exec. Call before prepare().
  void run_as(std::optional<RunAs> who) { run_as_ = std::move(who); }
  // Spawns the worker; the error says why warm-up cannot run.
  Status prepare();
  void start(const std::string& host, int port, std::chrono::milliseconds timeout, int repeat,
             OnPath on_path, OnDone on_done);
  // Stops the worker; no further callbacks.
  void cancel();

 private:
  void on_read(ssize_t nread, const uv_buf_t* buf);
  void finish_all_failed(const std::string& why);

  uv_loop_t* loop_;
  std::vector<std::string> paths_;
  std::optional<RunAs> run_as_;
  pid_t worker_ = -1;
  UvHandle<uv_pipe_t> to_worker_;
  UvHandle<uv_pipe_t> from_worker_;
  std::string buffer_;
  std::vector<char> read_storage_;
  OnPath on_path_;
  OnDone on_done_;
  size_t remaining_ = 0;
  bool all_ok_ = true;
  bool active_ = false;
};

}  // namespace knext
