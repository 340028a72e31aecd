#pragma once
#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "common/uv_handle.hpp"

namespace knext {

// Readiness the launcher can check itself: a non-blocking TCP connect to the public port from the
// loop, retried until one completes. What the app says about its port is only a cue to look.
class PortCheck {
 public:
  explicit PortCheck(uv_loop_t* loop);
  ~PortCheck();
  PortCheck(const PortCheck&) = delete;
  PortCheck& operator=(const PortCheck&) = delete;

  // Connects to host:port (an IPv4/IPv6 literal; empty, "0.0.0.0", "::" or "localhost" mean
  // loopback) until a connect completes, then calls on_open once. `on_refused` is called with the
  // error of the first failed attempt only.
  void start(const std::string& host, int port, std::function<void()> on_open,
             std::function<void(const std::string& error)> on_refused);
  void stop();
  bool running() const { return running_; }

 private:
  struct Attempt;
  void attempt();
  void on_result(int status);

  uv_loop_t* loop_;
  Timer retry_;
  sockaddr_storage address_{};
  Attempt* pending_ = nullptr;  // owned by its connect callback
  bool running_ = false;
  bool reported_refusal_ = false;
  std::function<void()> on_open_;
  std::function<void(const std::string&)> on_refused_;
};

}  // namespace knext
