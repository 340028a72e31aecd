#pragma once
#include <uv.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "probes/launch_state.hpp"

namespace knext {

// GETs every warm path against the server's internal address, in parallel on the libuv thread
// pool, retrying each until it answers 2xx/3xx or the deadline passes. Callbacks run on the loop.
class WarmUp {
 public:
  using OnPath = std::function<void(const WarmPathStatus&)>;
  using OnDone = std::function<void(bool all_ok)>;

  WarmUp(uv_loop_t* loop, std::vector<std::string> paths,
         std::chrono::steady_clock::time_point deadline);
  ~WarmUp();
  WarmUp(const WarmUp&) = delete;
  WarmUp& operator=(const WarmUp&) = delete;

  void start(const std::string& host, int port, OnPath on_path, OnDone on_done);
  // Stops retrying and aborts requests in flight (their results are then failures).
  void cancel();
  bool running() const { return pending_ > 0; }

 private:
  struct Job;
  static void work(uv_work_t* req);
  static void after_work(uv_work_t* req, int status);

  uv_loop_t* loop_;
  std::vector<std::string> paths_;
  std::chrono::steady_clock::time_point deadline_;
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  OnPath on_path_;
  OnDone on_done_;
  size_t pending_ = 0;
  bool all_ok_ = true;
};

}  // namespace knext
