#include "probes/gate/proxy_gate.hpp"

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <sys/resource.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

#include "common/log.hpp"
#include "probes/http/http_head.hpp"

namespace knext {
namespace {

constexpr size_t kReadSize = 64 * 1024;
// A side stops being read while this much is waiting to be written to its peer and resumes
// once the peer has taken it.
constexpr size_t kHighWater = 64 * 1024;
constexpr int kBacklog = 511;
// Without the kernel's accept-queue figures, held connections are released this many per
// release tick (kReleaseTick).
constexpr size_t kBlindReleasePerTick = 16;
constexpr uint64_t kReleaseTickMs = 1;
// Until its request line is whole a connection is read this much at a time, so what it sends
// after that line mostly stays in the kernel.
constexpr size_t kHeadChunk = 1024;
// Once decided and until its upstream connection is up, a connection keeps at most this much
// (or its request line, if longer).
constexpr size_t kHeldBytes = 2048;
// fds kept for everything else the launcher opens when sizing the connection cap.
constexpr size_t kSpareFds = 64;

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

// The first request line with its line end, once it is whole (empty lines before it skipped,
// as RFC 9112 allows).
std::optional<std::string_view> first_line(std::string_view bytes) {
  for (size_t start = 0;;) {
    size_t end = bytes.find('\n', start);
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view line = bytes.substr(start, end - start);
    if (line != "" && line != "\r") return bytes.substr(start, end + 1 - start);
    start = end + 1;
  }
}

std::string authority(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host.empty() ? "0.0.0.0" : host, port);
}

}  // namespace

// One accepted connection and, once forwarding, its upstream connection.
class ProxyGate::Connection final : public TcpConnection {
 public:
  explicit Connection(ProxyGate& gate) : gate_(&gate) {}

  // The gate opened: a held connection joins the release queue.
  void gate_opened() {
    if (state_ == State::kHeld) queue_for_release();
  }
  // Taken off the release queue: connect now.
  void released() {
    queued_ = false;
    connect_upstream();
  }
  bool held() const { return state_ == State::kHeld || (state_ == State::kHead && !gate_->open_); }

 private:
  enum class State { kHead, kHeld, kConnecting, kPiping, kAnswering };

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

  uv_stream_t* upstream() { return reinterpret_cast<uv_stream_t*>(&upstream_); }

  void on_accepted() override;
  void on_timeout() override;
  void close_extra_handles(bool reset) override;

  int read_from(uv_stream_t* stream);
  void on_read(uv_stream_t* from, ssize_t nread, const uv_buf_t* buf);
  void on_written(Outbox& out, int status);
  void on_shutdown(Outbox& out, int status);
  void on_connected(int status);

  void check_head();
  void route();
  void hold();
  void queue_for_release();
  void connect_upstream();
  void answer(int status, bool head_only);
  void deliver(Outbox& out, const char* data, size_t size);
  void flush(Outbox& out);
  void end(Outbox& out);
  uv_handle_t* client_handle() { return reinterpret_cast<uv_handle_t*>(client_tcp()); }
  size_t high_water(const Outbox& out) const;
  void pause_if_full(uv_stream_t* source, Outbox& out, bool& paused);
  void resume_if_drained(uv_stream_t* source, Outbox& out, bool& paused, bool source_ended);
  void maybe_finish();
  // abort(): an error or a reset on one side, so the other is reset too (as it would have
  // been without the proxy in between).
  void abort() { close(true); }

  ProxyGate* gate_;  // only used while not closing: the gate closes its connections first
  uv_tcp_t upstream_{};
  uv_connect_t connect_req_{};
  bool upstream_initialized_ = false;
  bool queued_ = false;  // on the gate's release queue, at release_position_
  std::list<Connection*>::iterator release_position_;
  State state_ = State::kHead;
  Outbox to_upstream_;  // the client's bytes (the held request first)
  Outbox to_client_;
  bool client_eof_ = false;
  bool upstream_eof_ = false;
  bool client_paused_ = false;
  bool upstream_paused_ = false;
  bool answered_ = false;  // a local answer: close once it is written and shut down
};

void ProxyGate::Connection::on_accepted() {
  to_client_.stream = client();
  to_client_.connected = true;
  arm_timer(gate_->options_.head_timeout);
  if (read_from(client()) != 0) abort();
}

// Only a connection still without a whole request line (or, for the ready path, head) has its
// timer running.
void ProxyGate::Connection::on_timeout() {
  if (state_ != State::kHead) return;
  if (to_upstream_.queued.empty()) return close();
  answer(408, false);
}

void ProxyGate::Connection::close_extra_handles(bool reset) {
  if (queued_) gate_->release_queue_.erase(release_position_);
  queued_ = false;
  if (state_ == State::kConnecting) --gate_->connecting_;
  if (upstream_initialized_) close_handle(&upstream_, reset);
}

// Both streams read into the gate's one buffer; on_read consumes it before returning. A read of
// the client takes no more than may still be kept (see high_water).
int ProxyGate::Connection::read_from(uv_stream_t* stream) {
  return uv_read_start(
      stream,
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto& self = from<Connection>(h->data);
        size_t size = kReadSize;
        if (h == self.client_handle()) {
          size_t limit = self.high_water(self.to_upstream_);
          size_t have = self.to_upstream_.pending();
          size = std::min(self.state_ == State::kHead ? kHeadChunk : kReadSize,
                          have < limit ? limit - have : 1);
        }
        *buf = uv_buf_init(self.gate_->read_buffer_.get(), static_cast<unsigned>(size));
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        from<Connection>(s->data).on_read(s, nread, buf);
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
        if (state_ == State::kAnswering || closing()) return;
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
    if (state_ == State::kHead && !closing()) check_head();
    if (!closing() && state_ != State::kAnswering) {
      pause_if_full(client(), to_upstream_, client_paused_);
    }
  } else {
    deliver(to_client_, buf->base, static_cast<size_t>(nread));
    if (!closing()) pause_if_full(upstream(), to_client_, upstream_paused_);
  }
}

// The first request line decides: the ready path is answered here, anything else (including
// what does not parse as HTTP) is the server's business, the rest of its head included.
void ProxyGate::Connection::check_head() {
  auto line = first_line(to_upstream_.queued);
  if (!line && !client_eof_ && to_upstream_.queued.size() < kMaxRequestHead) return;
  if (line) {
    auto parsed = parse_request_head(std::string(*line) + "\r\n");
    if (parsed.ok() && parsed.head.target == gate_->ready_path_) {
      // Answered once the whole head is in: closing with request bytes unread would send a
      // RST that can destroy the answer.
      bool whole = !parse_request_head(to_upstream_.queued).incomplete();
      if (!whole && !client_eof_) return;
      answer(gate_->open_ ? 200 : 503, parsed.head.method == "HEAD");
      return;
    }
  }
  route();
}

void ProxyGate::Connection::route() {
  stop_timer();
  set_evictable(false);
  if (!gate_->open_) return hold();
  // While held connections are still being released, later ones queue behind them.
  if (!gate_->release_queue_.empty()) {
    hold();
    queue_for_release();
    gate_->release_held();
    return;
  }
  connect_upstream();
}

void ProxyGate::Connection::hold() {
  state_ = State::kHeld;
}

void ProxyGate::Connection::queue_for_release() {
  if (queued_) return;
  queued_ = true;
  release_position_ = gate_->release_queue_.insert(gate_->release_queue_.end(), this);
}

void ProxyGate::Connection::connect_upstream() {
  state_ = State::kConnecting;
  ++gate_->connecting_;
  upstream_.data = self_data();
  connect_req_.data = self_data();
  if (int rc = uv_tcp_init(loop(), &upstream_); rc != 0) return on_connected(rc);
  upstream_initialized_ = true;
  to_upstream_.stream = upstream();
  int rc = uv_tcp_connect(
      &connect_req_, &upstream_, reinterpret_cast<const sockaddr*>(&gate_->upstream_),
      [](uv_connect_t* req, int status) { from<Connection>(req->data).on_connected(status); });
  if (rc != 0) on_connected(rc);
}

void ProxyGate::Connection::on_connected(int status) {
  if (closing()) return;  // cancelled by close()
  --gate_->connecting_;
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
  if (!closing()) resume_if_drained(client(), to_upstream_, client_paused_, client_eof_);
}

void ProxyGate::Connection::answer(int status, bool head_only) {
  stop_timer();
  set_evictable(false);
  state_ = State::kAnswering;
  answered_ = true;
  to_upstream_.queued.clear();
  to_upstream_.queued.shrink_to_fit();
  HttpReply reply{status, "text/plain; charset=utf-8", ""};
  if (status == 200) reply.body = "ready\n";
  if (status == 503) reply.body = "not ready\n";
  if (status == 502) reply.body = "bad gateway: the server is not accepting connections\n";
  if (status == 408) reply.body = "request not received in time\n";
  std::string bytes = format_reply(reply, head_only);
  deliver(to_client_, bytes.data(), bytes.size());
  if (!closing()) end(to_client_);
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
    out.write_req.data = self_data();
    uv_buf_t buf = uv_buf_init(out.inflight.data(), static_cast<unsigned>(out.inflight.size()));
    int rc = uv_write(&out.write_req, out.stream, &buf, 1, [](uv_write_t* req, int status) {
      auto* self = &from<Connection>(req->data);
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
    out.shutdown_req.data = self_data();
    int rc = uv_shutdown(&out.shutdown_req, out.stream, [](uv_shutdown_t* req, int status) {
      auto* self = &from<Connection>(req->data);
      self->on_shutdown(
          req == &self->to_client_.shutdown_req ? self->to_client_ : self->to_upstream_, status);
    });
    if (rc != 0) abort();
  }
}

void ProxyGate::Connection::on_written(Outbox& out, int status) {
  out.inflight.clear();
  if (closing()) return;
  if (status != 0) return abort();
  flush(out);
  if (closing()) return;
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
  if (closing()) return;
  if (status != 0) return abort();
  out.ended = true;
  if (answered_) return close();
  maybe_finish();
}

// Until its upstream connection is up a connection keeps little: its request line (at most
// kMaxRequestHead bytes), then kHeldBytes; the rest waits in the kernel. It is still read up to
// there, so a client that resets is noticed.
size_t ProxyGate::Connection::high_water(const Outbox& out) const {
  if (&out != &to_upstream_ || out.connected) return kHighWater;
  return state_ == State::kHead ? kMaxRequestHead : kHeldBytes;
}

void ProxyGate::Connection::pause_if_full(uv_stream_t* source, Outbox& out, bool& paused) {
  if (!paused && out.pending() >= high_water(out)) {
    uv_read_stop(source);
    paused = true;
  }
}

void ProxyGate::Connection::resume_if_drained(uv_stream_t* source, Outbox& out, bool& paused,
                                              bool source_ended) {
  if (!paused || source_ended || out.pending() >= high_water(out)) return;
  paused = false;
  int rc = read_from(source);
  if (rc != 0) abort();
}

// Both directions ended and passed on: nothing more can flow.
void ProxyGate::Connection::maybe_finish() {
  if (client_eof_ && upstream_eof_ && to_client_.ended && to_upstream_.ended) close();
}

ProxyGate::ProxyGate(uv_loop_t* loop, std::string ready_path, ProxyGateOptions options)
    : loop_(loop),
      ready_path_(std::move(ready_path)),
      options_(options),
      read_buffer_(std::make_unique<char[]>(kReadSize)),
      release_timer_(loop),
      server_(
          loop, [this] { return std::make_unique<Connection>(*this); }, server_options(options)) {}

ProxyGate::~ProxyGate() {
  server_.close();  // the connections leave the release queue as they close
}

TcpServerOptions ProxyGate::server_options(const ProxyGateOptions& options) {
  TcpServerOptions server;
  server.backlog = kBacklog;
  server.max_connections = options.max_connections;
  // Each forwarded connection takes two fds: keep the cap where both fit.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
    size_t fit = files.rlim_cur > 2 * kSpareFds ? (files.rlim_cur - kSpareFds) / 2 : kSpareFds;
    server.max_connections = std::min(server.max_connections, fit);
  }
  return server;
}

Status ProxyGate::listen(const std::string& host, int port) {
  auto where = authority(host, port);
  if (listen_called_) return Error{"listen on " + where + ": the gate listens only once"};
  listen_called_ = true;
  if (auto listening = server_.listen(host, port); !listening) {
    return Error{"listen on " + where + ": " + listening.error().message, listening.error().code};
  }
  return ok_status();
}

Status ProxyGate::open(const std::string& upstream_host, int upstream_port) {
  auto address = ip_address(upstream_host, upstream_port);
  if (!address) {
    return Error{fmt::format("proxy upstream {}: {}", authority(upstream_host, upstream_port),
                             address.error().message)};
  }
  upstream_ = *address;
  upstream_port_ = upstream_port;
  open_ = true;
  // Nothing closes while this runs: the connections join the queue in accept order.
  server_.for_each([](TcpConnection& c) { static_cast<Connection&>(c).gate_opened(); });
  release_held();
  return ok_status();
}

// Connects held connections while the server's accept queue (plus the connects under way) has
// room; what is left waits for the next tick.
void ProxyGate::release_held() {
  size_t room = kBlindReleasePerTick;
  if (auto queue = accept_queue_.read(upstream_port_)) {
    size_t window =
        std::min<size_t>(options_.release_window, std::max<uint32_t>(queue->limit / 2, 1));
    size_t used = queue->length + connecting_;
    room = used < window ? window - used : 0;
  }
  while (room > 0 && !release_queue_.empty()) {
    Connection* next = release_queue_.front();
    release_queue_.pop_front();
    --room;
    next->released();
  }
  if (release_queue_.empty()) {
    release_timer_.stop();
  } else if (!release_timer_.active()) {
    release_timer_.start(kReleaseTickMs, kReleaseTickMs, [this] { release_held(); });
  }
}

void ProxyGate::close_listener() {
  server_.close_listener();
}

size_t ProxyGate::held_connections() const {
  size_t held = 0;
  server_.for_each(
      [&](const TcpConnection& c) { held += static_cast<const Connection&>(c).held() ? 1 : 0; });
  return held;
}

}  // namespace knext
