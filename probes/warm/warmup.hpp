#pragma once
#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "common/run_as.hpp"
#include "common/uv_handle.hpp"
#include "probes/launch_state.hpp"

namespace knext {

// The launcher's side of warm-up: starts the worker process early (see warm_worker.hpp), hands
// it the server's address when known, relays background-warming commands, and reports what the
// worker says on the loop.
class WarmUp {
 public:
  struct Callbacks {
    std::function<void(const WarmPathStatus&)> on_path;
    std::function<void()> on_gate;  // no critical path holds the gate any more
    std::function<void(size_t warmed, size_t total, const std::string& reason)> on_background_done;
    std::function<void(const std::string& level, const std::string& text)> on_log;
  };

  // worker_args: the worker's options and critical paths (see warm_worker.hpp).
  WarmUp(uv_loop_t* loop, std::vector<std::string> worker_args);
  ~WarmUp();
  WarmUp(const WarmUp&) = delete;
  WarmUp& operator=(const WarmUp&) = delete;

  // The worker drops to this user (--user) before its exec. Call before prepare().
  void run_as(std::optional<RunAs> who) { run_as_ = std::move(who); }
  // The worker's whole environment ("NAME=value"); by default the launcher's own.
  void use_env(std::vector<std::string> env) { env_ = std::move(env); }
  // Spawns the worker and listens to it; the error says why warm-up cannot run.
  Status prepare(Callbacks callbacks);
  void start(const std::string& host, int port, std::chrono::milliseconds timeout, int repeat,
             pid_t node_pid);
  // After the gate opened: warm the background routes within `budget` (0: none).
  // after_preload: background routes wait for preloaded() (Next's deferred preload done).
  void start_background(std::chrono::milliseconds budget, bool after_preload);
  void preloaded();
  // A user request is (true) or no user request is (false) in flight.
  void set_busy(bool busy);
  // Stops the worker; no further callbacks.
  void cancel();

 private:
  void on_read(ssize_t nread, const uv_buf_t* buf);
  void on_line(std::string_view line);
  void send(const std::string& line);
  void fail_holding(const std::string& why);

  uv_loop_t* loop_;
  std::vector<std::string> args_;
  std::optional<RunAs> run_as_;
  std::optional<std::vector<std::string>> env_;
  pid_t worker_ = -1;
  UvHandle<uv_pipe_t> to_worker_;
  UvHandle<uv_pipe_t> from_worker_;
  std::string buffer_;
  std::vector<char> read_storage_;
  Callbacks callbacks_;
  std::vector<WarmPathStatus> holding_;  // critical paths the worker has not finished
  bool named_critical_ = false;          // it reported a critical path (it picks auto ones)
  bool gate_reported_ = false;
  bool background_done_ = false;
  bool active_ = false;
};

}  // namespace knext
