#include "probes/admin_server.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <array>
#include <exception>

namespace knext {
namespace {

// True when the client may have sent (or still send) bytes past the head: a body, or more.
bool may_have_unread_bytes(const HttpRequestHead& head, std::size_t received) {
  if (received > head.head_length) return true;
  if (head.find_header("Transfer-Encoding") != nullptr) return true;
  const HttpHeaderField* length = head.find_header("Content-Length");
  return length != nullptr && length->value != "0";
}

}  // namespace

// One accepted connection. Its libuv handles are members, so it must outlive their close
// callbacks: while open it is owned by the server's map; close() passes ownership to those
// callbacks (as UvHandle does), and the last one to run frees it. Write and shutdown callbacks
// that libuv runs (cancelled) while closing therefore still find it alive.
class AdminServer::Connection {
 public:
  explicit Connection(AdminServer& server) : server_(&server) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Accepts the pending connection and starts reading; false when that failed (close it).
  bool start(uv_stream_t* listener);
  static void close(std::unique_ptr<Connection> self);

 private:
  enum class Phase { kReading, kWriting, kDraining, kClosing };

  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_timeout(uv_timer_t* timer);
  static void on_written(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_closed(uv_handle_t* handle);

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  void restart_timer();
  void handle_request_bytes();
  HttpReply call_handler(const HttpRequestHead& head);
  void answer(const HttpReply& reply, bool head_only, std::string_view extra_headers = {});
  void after_write();
  void finish();  // asks the server to close this connection

  AdminServer* server_;  // null once closing: the server may be gone before the callbacks run
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_write_t write_req_{};
  uv_shutdown_t shutdown_req_{};
  bool tcp_initialized_ = false;
  bool timer_initialized_ = false;
  int pending_closes_ = 0;
  Phase phase_ = Phase::kReading;
  bool peer_eof_ = false;
  bool linger_ = true;    // request bytes may remain unread: drain them before closing
  std::string buffered_;  // the request head so far (bounded by kMaxRequestHead + one chunk)
  std::string response_;  // kept until the write completes
  std::array<char, 4096> chunk_{};
};

bool AdminServer::Connection::start(uv_stream_t* listener) {
  uv_loop_t* loop = server_->loop_;
  if (uv_tcp_init(loop, &tcp_) != 0) return false;
  tcp_initialized_ = true;
  tcp_.data = this;
  if (uv_timer_init(loop, &timer_) != 0) return false;
  timer_initialized_ = true;
  timer_.data = this;
  write_req_.data = this;
  shutdown_req_.data = this;
  if (uv_accept(listener, stream()) != 0) return false;
  uv_tcp_nodelay(&tcp_, 1);
  restart_timer();
  return uv_read_start(stream(), on_alloc, on_read) == 0;
}

void AdminServer::Connection::close(std::unique_ptr<Connection> self) {
  self->phase_ = Phase::kClosing;
  self->server_ = nullptr;
  if (self->tcp_initialized_) ++self->pending_closes_;
  if (self->timer_initialized_) ++self->pending_closes_;
  if (self->pending_closes_ == 0) return;  // nothing for libuv to close: freed here
  Connection* owned_by_callbacks = self.release();
  if (owned_by_callbacks->tcp_initialized_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&owned_by_callbacks->tcp_), on_closed);
  }
  if (owned_by_callbacks->timer_initialized_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&owned_by_callbacks->timer_), on_closed);
  }
}

void AdminServer::Connection::on_closed(uv_handle_t* handle) {
  auto* self = static_cast<Connection*>(handle->data);
  if (--self->pending_closes_ == 0) std::unique_ptr<Connection> last_owner(self);
}

void AdminServer::Connection::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(handle->data);
  *buf = uv_buf_init(self->chunk_.data(), static_cast<unsigned>(self->chunk_.size()));
}

void AdminServer::Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  auto* self = static_cast<Connection*>(stream->data);
  if (nread == 0) return;  // EAGAIN
  if (nread < 0) {
    self->peer_eof_ = true;
    // A client that half-closes after part of a head can still read why it is refused.
    if (nread == UV_EOF && self->phase_ == Phase::kReading && !self->buffered_.empty()) {
      uv_read_stop(self->stream());
      self->answer({400, "text/plain; charset=utf-8", "incomplete request head\n"}, false);
      return;
    }
    self->finish();  // EOF, reset, or the drain after the answer is over
    return;
  }
  if (self->phase_ != Phase::kReading) return;  // draining: discard what the client still sends
  self->buffered_.append(self->chunk_.data(), static_cast<size_t>(nread));
  self->handle_request_bytes();
}

void AdminServer::Connection::handle_request_bytes() {
  HeadParseResult parsed = parse_request_head(buffered_);
  if (parsed.incomplete()) return;
  uv_read_stop(stream());
  if (parsed.bad()) {
    answer({parsed.status, "text/plain; charset=utf-8", parsed.reason + "\n"}, false);
    return;
  }
  const HttpRequestHead& head = parsed.head;
  if (head.method != "GET" && head.method != "HEAD") {
    answer({405, "text/plain; charset=utf-8", "only GET and HEAD are allowed\n"}, false,
           "Allow: GET, HEAD\r\n");
    return;
  }
  linger_ = may_have_unread_bytes(head, buffered_.size());
  answer(call_handler(head), head.method == "HEAD");
}

HttpReply AdminServer::Connection::call_handler(const HttpRequestHead& head) {
  // Exceptions must not unwind through libuv's C frames.
  try {
    return server_->handler_(head);
  } catch (const std::exception& e) {
    return {500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what() + "\n"};
  } catch (...) {
    return {500, "text/plain; charset=utf-8", "internal error\n"};
  }
}

void AdminServer::Connection::answer(const HttpReply& reply, bool head_only,
                                     std::string_view extra_headers) {
  phase_ = Phase::kWriting;
  restart_timer();  // a client that never reads the answer is dropped too
  response_ = format_reply(reply, head_only, extra_headers);
  uv_buf_t buf = uv_buf_init(response_.data(), static_cast<unsigned>(response_.size()));
  if (uv_write(&write_req_, stream(), &buf, 1, on_written) != 0) finish();
}

void AdminServer::Connection::on_written(uv_write_t* req, int status) {
  auto* self = static_cast<Connection*>(req->data);
  if (self->phase_ == Phase::kClosing) return;  // cancelled by close()
  if (status < 0) {
    self->finish();  // e.g. the client reset the connection
    return;
  }
  self->after_write();
}

// Closes at once when the whole request was read. Otherwise sends FIN, then reads and discards
// until the client closes (or the timer fires): closing with unread request bytes would send a
// RST, which can destroy the answer before the client reads it.
void AdminServer::Connection::after_write() {
  if (peer_eof_ || !linger_) {
    finish();
    return;
  }
  phase_ = Phase::kDraining;
  restart_timer();
  if (uv_shutdown(&shutdown_req_, stream(), on_shutdown) != 0 ||
      uv_read_start(stream(), on_alloc, on_read) != 0) {
    finish();
  }
}

void AdminServer::Connection::on_shutdown(uv_shutdown_t* req, int status) {
  auto* self = static_cast<Connection*>(req->data);
  if (self->phase_ == Phase::kClosing) return;
  if (status < 0) self->finish();
}

void AdminServer::Connection::restart_timer() {
  uv_timer_start(&timer_, on_timeout, static_cast<uint64_t>(server_->options_.read_timeout.count()),
                 0);
}

void AdminServer::Connection::on_timeout(uv_timer_t* timer) {
  static_cast<Connection*>(timer->data)->finish();
}

void AdminServer::Connection::finish() {
  // The object stays alive (owned by its close callbacks) until the loop runs them.
  if (server_ != nullptr) server_->close_connection(this);
}

AdminServer::AdminServer(uv_loop_t* loop, Handler handler, AdminServerOptions options)
    : loop_(loop), handler_(std::move(handler)), options_(options) {}

AdminServer::~AdminServer() {
  close();
}

Status AdminServer::listen(const std::string& host, int port) {
  std::string what = "admin port " + std::to_string(port) + ": ";
  if (listen_called_) return Error{what + "listen() was already called", EINVAL};
  listen_called_ = true;
  if (port < 0 || port > 65535) return Error{what + "not a TCP port", EINVAL};

  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return Error{what + "'" + host + "' is not an IPv4 or IPv6 address", EINVAL};
  }
  auto failed = [&](int rc) { return Error{what + uv_strerror(rc), -rc}; };
  if (int rc = uv_tcp_init(loop_, listener_.get()); rc != 0) return failed(rc);
  listener_.mark_initialized();
  listener_.get()->data = this;
  if (int rc = uv_tcp_bind(listener_.get(), reinterpret_cast<const sockaddr*>(&addr), 0); rc != 0) {
    return failed(rc);
  }
  auto on_connection = [](uv_stream_t* listener, int status) {
    static_cast<AdminServer*>(listener->data)->on_connection(status);
  };
  if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_.get()), SOMAXCONN, on_connection);
      rc != 0) {
    return failed(rc);
  }
  sockaddr_storage bound{};
  int len = sizeof(bound);
  if (int rc = uv_tcp_getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&bound), &len);
      rc != 0) {
    return failed(rc);
  }
  port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return ok_status();
}

void AdminServer::on_connection(int status) {
  if (status < 0) return;  // e.g. EMFILE: libuv keeps the listener going
  auto connection = std::make_unique<Connection>(*this);
  Connection* raw = connection.get();
  connections_.emplace(raw, std::move(connection));
  // Accept even when over the limit (the kernel's queue must drain), then drop it.
  if (!raw->start(reinterpret_cast<uv_stream_t*>(listener_.get())) ||
      connections_.size() > options_.max_connections) {
    close_connection(raw);
  }
}

void AdminServer::close_connection(Connection* connection) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  std::unique_ptr<Connection> owned = std::move(it->second);
  connections_.erase(it);
  Connection::close(std::move(owned));
}

void AdminServer::close() {
  listener_.close();
  auto open = std::move(connections_);
  connections_.clear();
  for (auto& [raw, owned] : open) Connection::close(std::move(owned));
}

}  // namespace knext
