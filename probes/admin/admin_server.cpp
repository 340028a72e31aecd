#include "probes/admin/admin_server.hpp"

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

// One accepted connection: one request, one answer, then closed.
class AdminServer::Connection final : public TcpConnection {
 public:
  explicit Connection(AdminServer& server) : server_(&server) {}

 private:
  enum class Phase { kReading, kWriting, kDraining };

  void on_accepted() override;
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_written(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);

  void restart_timer() { arm_timer(server_->options_.read_timeout); }
  void handle_request_bytes();
  HttpReply call_handler(const HttpRequestHead& head);
  void answer(const HttpReply& reply, bool head_only, std::string_view extra_headers = {});
  void after_write();

  AdminServer* server_;  // only used while not closing: the server closes its connections first
  uv_write_t write_req_{};
  uv_shutdown_t shutdown_req_{};
  Phase phase_ = Phase::kReading;
  bool peer_eof_ = false;
  bool linger_ = true;    // request bytes may remain unread: drain them before closing
  std::string buffered_;  // the request head so far (bounded by kMaxRequestHead + one chunk)
  std::string response_;  // kept until the write completes
  std::array<char, 4096> chunk_{};
};

void AdminServer::Connection::on_accepted() {
  write_req_.data = self_data();
  shutdown_req_.data = self_data();
  restart_timer();
  if (uv_read_start(client(), on_alloc, on_read) != 0) close();
}

void AdminServer::Connection::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto& self = from<Connection>(handle->data);
  *buf = uv_buf_init(self.chunk_.data(), static_cast<unsigned>(self.chunk_.size()));
}

void AdminServer::Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  auto* self = &from<Connection>(stream->data);
  if (nread == 0) return;  // EAGAIN
  if (nread < 0) {
    self->peer_eof_ = true;
    // A client that half-closes after part of a head can still read why it is refused.
    if (nread == UV_EOF && self->phase_ == Phase::kReading && !self->buffered_.empty()) {
      uv_read_stop(self->client());
      self->answer({400, "text/plain; charset=utf-8", "incomplete request head\n"}, false);
      return;
    }
    self->close();  // EOF, reset, or the drain after the answer is over
    return;
  }
  if (self->phase_ != Phase::kReading) return;  // draining: discard what the client still sends
  self->buffered_.append(self->chunk_.data(), static_cast<size_t>(nread));
  self->handle_request_bytes();
}

void AdminServer::Connection::handle_request_bytes() {
  HeadParseResult parsed = parse_request_head(buffered_);
  if (parsed.incomplete()) return;
  set_evictable(false);  // a whole request: it is answered and closed soon
  uv_read_stop(client());
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
  if (uv_write(&write_req_, client(), &buf, 1, on_written) != 0) close();
}

void AdminServer::Connection::on_written(uv_write_t* req, int status) {
  auto* self = &from<Connection>(req->data);
  if (self->closing()) return;  // cancelled by close()
  if (status < 0) {
    self->close();  // e.g. the client reset the connection
    return;
  }
  self->after_write();
}

// Closes at once when the whole request was read. Otherwise sends FIN, then reads and discards
// until the client closes (or the timer fires): closing with unread request bytes would send a
// RST, which can destroy the answer before the client reads it.
void AdminServer::Connection::after_write() {
  if (peer_eof_ || !linger_) {
    close();
    return;
  }
  phase_ = Phase::kDraining;
  restart_timer();
  if (uv_shutdown(&shutdown_req_, client(), on_shutdown) != 0 ||
      uv_read_start(client(), on_alloc, on_read) != 0) {
    close();
  }
}

void AdminServer::Connection::on_shutdown(uv_shutdown_t* req, int status) {
  auto* self = &from<Connection>(req->data);
  if (self->closing()) return;
  if (status < 0) self->close();
}

AdminServer::AdminServer(uv_loop_t* loop, Handler handler, AdminServerOptions options)
    : loop_(loop), handler_(std::move(handler)), options_(options), server_(make_server()) {}

AdminServer::~AdminServer() {
  close();
}

std::unique_ptr<TcpServer> AdminServer::make_server() {
  TcpServerOptions options;
  options.max_connections = options_.max_connections;
  options.backlog = SOMAXCONN;
  options.evict_when_full = true;
  options.evict_min_age = options_.evict_min_age;
  return std::make_unique<TcpServer>(
      loop_, [this] { return std::make_unique<Connection>(*this); }, options);
}

Status AdminServer::listen(const std::string& host, int port) {
  std::string what = "admin port " + std::to_string(port) + ": ";
  if (listen_called_) return Error{what + "listen() was already called", EINVAL};
  listen_called_ = true;
  if (port < 0 || port > 65535) return Error{what + "not a TCP port", EINVAL};
  host_ = host.empty() ? "::" : host;
  if (!ip_address(host_, port)) {
    return Error{what + "'" + host + "' is not an IPv4 or IPv6 address", EINVAL};
  }
  Status listening = server_->listen(host_, port);
  if (!listening && host.empty() &&
      (listening.error().code == EAFNOSUPPORT || listening.error().code == EADDRNOTAVAIL)) {
    server_ = make_server();  // IPv6 is off here: IPv4 only
    host_ = "0.0.0.0";
    listening = server_->listen(host_, port);
  }
  if (!listening) return Error{what + listening.error().message, listening.error().code};
  return ok_status();
}

}  // namespace knext
