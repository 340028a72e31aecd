#include "launcher/control_channel.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace knext {
namespace {
struct WriteRequest {
  uv_write_t req;
  std::string data;
};
}  // namespace

Expected<std::unique_ptr<ControlChannel>> ControlChannel::create(uv_loop_t* loop) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Error{std::string("control socketpair: ") + std::strerror(errno)};
  }
  Fd parent_end(fds[0]);
  auto channel = std::make_unique<ControlChannel>(Fd(fds[1]));
  if (int rc = uv_pipe_init(loop, channel->pipe_.get(), 0); rc != 0) {
    return Error{std::string("control channel: ") + uv_strerror(rc)};
  }
  channel->pipe_.mark_initialized();
  if (int rc = uv_pipe_open(channel->pipe_.get(), parent_end.get()); rc != 0) {
    return Error{std::string("control channel: ") + uv_strerror(rc)};
  }
  parent_end.release();  // the pipe owns it now
  channel->pipe_.get()->data = channel.get();
  return channel;
}

ControlChannel::ControlChannel(Fd child_end) : child_end_(std::move(child_end)) {}

ControlChannel::~ControlChannel() {
  pipe_.get()->data = nullptr;
}

void ControlChannel::start(OnMessage on_message, OnClosed on_closed) {
  on_message_ = std::move(on_message);
  on_closed_ = std::move(on_closed);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(pipe_.get()),
      [](uv_handle_t*, size_t suggested, uv_buf_t* buf) {
        static std::vector<char> storage;  // loop thread only; consumed before the next read
        storage.resize(suggested);
        *buf = uv_buf_init(storage.data(), static_cast<unsigned>(storage.size()));
      },
      [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        if (auto* self = static_cast<ControlChannel*>(stream->data)) self->on_read(nread, buf);
      });
}

void ControlChannel::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (nread < 0) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(pipe_.get()));
    closed_ = true;
    if (on_closed_) on_closed_();
    return;
  }
  buffer_.append(buf->base, static_cast<size_t>(nread));
  size_t newline;
  while ((newline = buffer_.find('\n')) != std::string::npos) {
    std::string line = buffer_.substr(0, newline);
    buffer_.erase(0, newline + 1);
    if (auto message = parse_hook_message(line); message && on_message_) on_message_(*message);
  }
  if (buffer_.size() > kMaxHookMessage) buffer_.clear();  // a runaway line is dropped, not buffered
}

void ControlChannel::send(const std::string& line) {
  if (closed_) return;
  auto request = std::make_unique<WriteRequest>();
  request->data = line + "\n";
  uv_buf_t buf = uv_buf_init(request->data.data(), static_cast<unsigned>(request->data.size()));
  request->req.data = request.get();
  int rc = uv_write(&request->req, reinterpret_cast<uv_stream_t*>(pipe_.get()), &buf, 1,
                    [](uv_write_t* req, int) {
                      std::unique_ptr<WriteRequest> done(static_cast<WriteRequest*>(req->data));
                    });
  if (rc == 0) request.release();  // owned by the write callback now
}

}  // namespace knext
