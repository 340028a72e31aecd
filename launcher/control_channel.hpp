#pragma once
#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "common/expected.hpp"
#include "common/fd.hpp"
#include "common/uv_handle.hpp"
#include "launcher/hook_protocol.hpp"

namespace knext {

// The launcher's end of a socketpair whose other end the node child inherits as
// KNEXT_CONTROL_FD; carries hook messages in and commands ("open", "flush") out.
class ControlChannel {
 public:
  using OnMessage = std::function<void(const HookMessage&)>;
  using OnClosed = std::function<void()>;

  static Expected<std::unique_ptr<ControlChannel>> create(uv_loop_t* loop);
  explicit ControlChannel(Fd child_end);  // use create()
  ~ControlChannel();
  ControlChannel(const ControlChannel&) = delete;
  ControlChannel& operator=(const ControlChannel&) = delete;

  int child_fd() const { return child_end_.get(); }
  // After the spawn: the child holds its own copy now.
  void close_child_end() { child_end_.reset(); }
  void start(OnMessage on_message, OnClosed on_closed);
  void send(const std::string& line);
  bool closed() const { return closed_; }

 private:
  void on_read(ssize_t nread, const uv_buf_t* buf);

  UvHandle<uv_pipe_t> pipe_;
  Fd child_end_;
  std::string buffer_;
  OnMessage on_message_;
  OnClosed on_closed_;
  bool closed_ = false;
};

}  // namespace knext
