#include "probes/proxy_gate.hpp"

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <utility>

#include "launcher/log.hpp"
#include "probes/http_head.hpp"

namespace knext {
namespace {

constexpr size_t kReadSize = 64 * 1024;
// A side stops being read while this much is waiting to be written to its peer (held bytes
// included) and resumes once the peer has taken it.
constexpr size_t kHighWater = 64 * 1024;
constexpr int kBacklog = 511;

Expected<sockaddr_storage> ip_address(const std::string& host, int port) {
  if (port < 0 || port > 65535) return Error{fmt::format("port {} is out of range", port)};
  std::string ip = host.empty() ? "0.0.0.0" : host == "localhost" ? "127.0.0.1" : host;
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  sockaddr_storage address{};
  if (uv_ip4_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in*>(&address)) == 0 ||
      uv_ip6_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(&address)) == 0) {
    return address;
  }
  return Error{fmt::format("{} is not an IP address", host)};
}

// libuv reports a reset that arrives together with the last data as EOF (POLLHUP after a short
// read); the socket still knows better: a pending error, or CLOSED where a half-closed peer
// leaves CLOSE_WAIT (once our own FIN went out, a plain FIN also ends in CLOSED: not telling).
bool was_reset(uv_stream_t* stream, bool we_ended) {
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(stream), &fd) != 0) return true;
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error != 0) return true;
  tcp_info info{};
  length = sizeof(info);
  return !we_ended && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) == 0 &&
         info.tcpi_state == TCP_CLOSE;
}

std::string authority(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host.empty() ? "0.0.0.0" : host, port);
}

}  // namespace

// One accepted connection and, once forwarding, its upstream connection. Owned by the gate
// (or by itself once the gate is gone); freed when the last of its handles has closed, after
// libuv has cancelled its pending requests.
class ProxyGate::Connection {
 public:
  explicit Connection(ProxyGate* gate) : gate_(gate) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start(uv_stream_t* server);
  void gate_opened() {
    if (state_ == State::kHeld) connect_upstream();
  }
  bool held() const { return state_ == State::kHeld || (state_ == State::kHead && !gate_->open_); }
  // The gate is going away: close, and free this when the close callbacks have run.
  void abandon() {
    gate_ = nullptr;
    close();
  }

 private:
  enum class State { kHead, kHeld, kConnecting, kPiping, kAnswering, kClosing };

  // Bytes on their way into one stream. One write in flight at a time; whatever arrives
  // meanwhile is queued and goes out as the next write.
  struct Outbox {
    uv_stream_t* stream = nullptr;
    uv_write_t write_req{};
    uv_shutdown_t shutdown_req{};
    std::string inflight;  // owned by libuv until the write callback
    std::string queued;
    bool connected = false;   // before that everything queues
    bool end_wanted = false;  // the other side ended: shut this stream down once drained
    bool end_sent = false;
    bool ended = false;
    size_t pending() const { return inflight.size() + queued.size(); }
  };

  uv_stream_t* client() { return reinterpret_cast<uv_stream_t*>(&client_); }
  uv_stream_t* upstream() { return reinterpret_cast<uv_stream_t*>(&upstream_); }

  static int read_from(uv_stream_t* stream);
  void on_read(uv_stream_t* from, ssize_t nread, const uv_buf_t* buf);
  void on_written(Outbox& out, int status);
  void on_shutdown(Outbox& out, int status);
  void on_connected(int status);
  void on_closed();

  void check_head();
  void route();
  void connect_upstream();
  void answer(int status, bool head_only);
  void deliver(Outbox& out, const char* data, size_t size);
  void flush(Outbox& out);
  void end(Outbox& out);
  void pause_if_full(uv_stream_t* source, Outbox& out, bool& paused);
  void resume_if_drained(uv_stream_t* source, Outbox& out, bool& paused, bool source_ended);
  void maybe_finish();
  // Graceful: both sockets closed normally. abort(): an error or a reset on one side, so the
  // other is reset too (as it would have been without the proxy in between).
  void close(bool reset = false);
  void abort() { close(true); }

  ProxyGate* gate_;
  uv_tcp_t client_{};
  uv_tcp_t upstream_{};
  uv_connect_t connect_req_{};
  int open_handles_ = 0;
  State state_ = State::kHead;
  Outbox to_upstream_;  // the client's bytes (the held request first)
  Outbox to_client_;
  bool client_eof_ = false;
  bool upstream_eof_ = false;
  bool client_paused_ = false;
  bool upstream_paused_ = false;
  bool answered_ = false;  // a local answer: close once it is written and shut down
};

void ProxyGate::Connection::start(uv_stream_t* server) {
  uv_tcp_init(server->loop, &client_);
  client_.data = this;
  ++open_handles_;
  to_client_.stream = client();
  to_client_.connected = true;
  if (uv_accept(server, client()) != 0) {
    close();
    return;
  }
  uv_tcp_nodelay(&client_, 1);
  int rc = read_from(client());
  if (rc != 0) abort();
}

// Both streams read into the gate's one buffer; on_read consumes it before returning.
int ProxyGate::Connection::read_from(uv_stream_t* stream) {
  return uv_read_start(
      stream,
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<Connection*>(h->data);
        *buf = uv_buf_init(self->gate_->read_buffer_.get(), kReadSize);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        static_cast<Connection*>(s->data)->on_read(s, nread, buf);
      });
}

void ProxyGate::Connection::on_read(uv_stream_t* from, ssize_t nread, const uv_buf_t* buf) {
  bool from_client = from == client();
  if (nread == 0) return;
  if (nread == UV_EOF) {
    uv_read_stop(from);
    if (was_reset(from, (from_client ? to_client_ : to_upstream_).end_sent)) return abort();
    if (from_client) {
      client_eof_ = true;
      if (state_ == State::kAnswering) return;
      if (state_ == State::kHead) {
        if (to_upstream_.queued.empty()) return close();  // connected and left: nothing to send
        check_head();
        if (state_ == State::kAnswering) return;
      }
      end(to_upstream_);
    } else {
      upstream_eof_ = true;
      end(to_client_);
    }
    return;
  }
  if (nread < 0) return abort();

  if (from_client) {
    if (state_ == State::kAnswering) return;  // the rest of a ready probe: not needed
    deliver(to_upstream_, buf->base, static_cast<size_t>(nread));
    if (state_ == State::kHead) check_head();
    if (state_ != State::kClosing) pause_if_full(client(), to_upstream_, client_paused_);
  } else {
    deliver(to_client_, buf->base, static_cast<size_t>(nread));
    if (state_ != State::kClosing) pause_if_full(upstream(), to_client_, upstream_paused_);
  }
}

// The first request line decides: the ready path is answered here, anything else (including
// what does not parse as HTTP) is the server's business.
void ProxyGate::Connection::check_head() {
  auto parsed = parse_request_head(to_upstream_.queued);
  if (parsed.incomplete() && !client_eof_) return;
  if (parsed.ok() && parsed.head.target == gate_->ready_path_) {
    answer(gate_->open_ ? 200 : 503, parsed.head.method == "HEAD");
    return;
  }
  route();
}

void ProxyGate::Connection::route() {
  if (gate_->open_) {
    connect_upstream();
  } else {
    state_ = State::kHeld;
  }
}

void ProxyGate::Connection::connect_upstream() {
  state_ = State::kConnecting;
  uv_tcp_init(client_.loop, &upstream_);
  upstream_.data = this;
  ++open_handles_;
  to_upstream_.stream = upstream();
  connect_req_.data = this;
  int rc = uv_tcp_connect(&connect_req_, &upstream_,
                          reinterpret_cast<const sockaddr*>(&gate_->upstream_),
                          [](uv_connect_t* req, int status) {
                            static_cast<Connection*>(req->data)->on_connected(status);
                          });
  if (rc != 0) on_connected(rc);
}

void ProxyGate::Connection::on_connected(int status) {
  if (state_ == State::kClosing) return;  // cancelled by close()
  if (status != 0) {
    log::debug(fmt::format("proxy: upstream connect failed: {}", uv_strerror(status)));
    answer(502, false);
    return;
  }
  state_ = State::kPiping;
  uv_tcp_nodelay(&upstream_, 1);
  to_upstream_.connected = true;
  int rc = read_from(upstream());
  if (rc != 0) return abort();
  flush(to_upstream_);
  if (state_ != State::kClosing) {
    resume_if_drained(client(), to_upstream_, client_paused_, client_eof_);
  }
}

void ProxyGate::Connection::answer(int status, bool head_only) {
  state_ = State::kAnswering;
  answered_ = true;
  to_upstream_.queued.clear();
  to_upstream_.queued.shrink_to_fit();
  HttpReply reply{status, "text/plain; charset=utf-8", ""};
  if (status == 200) reply.body = "ready\n";
  if (status == 503) reply.body = "not ready\n";
  if (status == 502) reply.body = "bad gateway: the server is not accepting connections\n";
  std::string bytes = format_reply(reply, head_only);
  deliver(to_client_, bytes.data(), bytes.size());
  if (state_ != State::kClosing) end(to_client_);
}

void ProxyGate::Connection::deliver(Outbox& out, const char* data, size_t size) {
  if (out.connected && out.inflight.empty() && out.queued.empty()) {
    uv_buf_t buf = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(size));
    int written = uv_try_write(out.stream, &buf, 1);
    if (written >= 0) {
      data += written;
      size -= static_cast<size_t>(written);
    } else if (written != UV_EAGAIN && written != UV_ENOSYS) {
      return abort();
    }
    if (size == 0) return;
  }
  out.queued.append(data, size);
  flush(out);
}

void ProxyGate::Connection::flush(Outbox& out) {
  if (!out.connected || !out.inflight.empty()) return;
  if (!out.queued.empty()) {
    std::swap(out.inflight, out.queued);
    out.write_req.data = this;
    uv_buf_t buf = uv_buf_init(out.inflight.data(), static_cast<unsigned>(out.inflight.size()));
    int rc = uv_write(&out.write_req, out.stream, &buf, 1, [](uv_write_t* req, int status) {
      auto* self = static_cast<Connection*>(req->data);
      self->on_written(req == &self->to_client_.write_req ? self->to_client_ : self->to_upstream_,
                       status);
    });
    if (rc != 0) {
      out.inflight.clear();
      abort();
    }
    return;
  }
  if (out.end_wanted && !out.end_sent) {
    out.end_sent = true;
    out.shutdown_req.data = this;
    int rc = uv_shutdown(&out.shutdown_req, out.stream, [](uv_shutdown_t* req, int status) {
      auto* self = static_cast<Connection*>(req->data);
      self->on_shutdown(
          req == &self->to_client_.shutdown_req ? self->to_client_ : self->to_upstream_, status);
    });
    if (rc != 0) abort();
  }
}

void ProxyGate::Connection::on_written(Outbox& out, int status) {
  out.inflight.clear();
  if (state_ == State::kClosing) return;
  if (status != 0) return abort();
  flush(out);
  if (state_ == State::kClosing) return;
  if (&out == &to_upstream_) {
    resume_if_drained(client(), out, client_paused_, client_eof_);
  } else if (state_ == State::kPiping) {
    resume_if_drained(upstream(), out, upstream_paused_, upstream_eof_);
  }
}

void ProxyGate::Connection::end(Outbox& out) {
  out.end_wanted = true;
  flush(out);
}

void ProxyGate::Connection::on_shutdown(Outbox& out, int status) {
  if (state_ == State::kClosing) return;
  if (status != 0) return abort();
  out.ended = true;
  if (answered_) return close();
  maybe_finish();
}

void ProxyGate::Connection::pause_if_full(uv_stream_t* source, Outbox& out, bool& paused) {
  if (!paused && out.pending() >= kHighWater) {
    uv_read_stop(source);
    paused = true;
  }
}

void ProxyGate::Connection::resume_if_drained(uv_stream_t* source, Outbox& out, bool& paused,
                                              bool source_ended) {
  if (!paused || source_ended || out.pending() >= kHighWater) return;
  paused = false;
  int rc = read_from(source);
  if (rc != 0) abort();
}

// Both directions ended and passed on: nothing more can flow.
void ProxyGate::Connection::maybe_finish() {
  if (client_eof_ && upstream_eof_ && to_client_.ended && to_upstream_.ended) close();
}

void ProxyGate::Connection::close(bool reset) {
  if (state_ == State::kClosing) return;
  state_ = State::kClosing;
  auto on_close = [](uv_handle_t* h) { static_cast<Connection*>(h->data)->on_closed(); };
  auto close_one = [&](uv_tcp_t* tcp) {
    // uv_tcp_close_reset refuses a stream being shut down; that one just closes.
    if (!reset || uv_tcp_close_reset(tcp, on_close) != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(tcp), on_close);
    }
  };
  close_one(&client_);
  if (to_upstream_.stream != nullptr) close_one(&upstream_);
}

void ProxyGate::Connection::on_closed() {
  if (--open_handles_ > 0) return;
  if (gate_ != nullptr) {
    gate_->forget(this);  // destroys this
  } else {
    std::unique_ptr<Connection> owned(this);  // abandoned by the gate: owned by itself
  }
}

ProxyGate::ProxyGate(uv_loop_t* loop, std::string ready_path)
    : loop_(loop),
      ready_path_(std::move(ready_path)),
      read_buffer_(std::make_unique<char[]>(kReadSize)) {}

ProxyGate::~ProxyGate() {
  for (auto& [raw, owned] : connections_) {
    owned.release();  // each frees itself in its last close callback
    raw->abandon();
  }
  connections_.clear();
}

Status ProxyGate::listen(const std::string& host, int port) {
  auto where = authority(host, port);
  if (listen_called_) return Error{"listen on " + where + ": the gate listens only once"};
  listen_called_ = true;
  auto address = ip_address(host, port);
  if (!address) return Error{"listen on " + where + ": " + address.error().message};
  uv_tcp_init(loop_, listener_.get());
  listener_.mark_initialized();
  listener_.get()->data = this;
  int rc = uv_tcp_bind(listener_.get(), reinterpret_cast<const sockaddr*>(&*address), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_.get()), kBacklog,
                   [](uv_stream_t* server, int status) {
                     static_cast<ProxyGate*>(server->data)->on_connection(status);
                   });
  }
  if (rc != 0) return Error{fmt::format("listen on {}: {}", where, uv_strerror(rc)), -rc};
  sockaddr_storage bound{};
  int length = sizeof(bound);
  uv_tcp_getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&bound), &length);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return ok_status();
}

Status ProxyGate::open(const std::string& upstream_host, int upstream_port) {
  auto address = ip_address(upstream_host, upstream_port);
  if (!address) {
    return Error{fmt::format("proxy upstream {}: {}", authority(upstream_host, upstream_port),
                             address.error().message)};
  }
  upstream_ = *address;
  open_ = true;
  // Connections are only ever freed from close callbacks, so the map is stable here.
  for (auto& entry : connections_) entry.first->gate_opened();
  return ok_status();
}

void ProxyGate::close_listener() {
  listener_.close();
  port_ = 0;
}

size_t ProxyGate::held_connections() const {
  size_t held = 0;
  for (const auto& entry : connections_) held += entry.first->held() ? 1 : 0;
  return held;
}

void ProxyGate::on_connection(int status) {
  if (status != 0) {
    log::debug(fmt::format("proxy: accept failed: {}", uv_strerror(status)));
    return;
  }
  auto connection = std::make_unique<Connection>(this);
  Connection* raw = connection.get();
  connections_.emplace(raw, std::move(connection));
  raw->start(reinterpret_cast<uv_stream_t*>(listener_.get()));
}

void ProxyGate::forget(Connection* connection) {
  connections_.erase(connection);
}

}  // namespace knext
