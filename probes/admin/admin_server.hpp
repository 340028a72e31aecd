#pragma once
#include <uv.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "common/expected.hpp"
#include "probes/http/http_head.hpp"
#include "probes/http/tcp_server.hpp"

namespace knext {

struct AdminServerOptions {
  // A connection that has not sent a whole request head by then (or not taken its answer and
  // closed after it) is closed.
  std::chrono::milliseconds read_timeout{5'000};
  // At most this many connections are open, so a flood cannot exhaust fds. When full, a new
  // connection replaces the oldest one that has not sent a whole request yet and has been open
  // for evict_min_age: a flood of idle connections cannot lock the liveness probe out.
  std::size_t max_connections = 512;
  std::chrono::milliseconds evict_min_age{100};
};

// A tiny HTTP/1.x server for the admin endpoint on a libuv loop: one request per connection,
// GET and HEAD only, answered by `handler` and closed. Nothing blocks the loop. Lives on the
// loop's thread; not thread-safe.
class AdminServer {
 public:
  using Handler = std::function<HttpReply(const HttpRequestHead&)>;

  AdminServer(uv_loop_t* loop, Handler handler, AdminServerOptions options = {});
  ~AdminServer();  // close()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds host:port (IPv4 or IPv6 literal) and starts accepting. An empty host is every
  // interface: "::" (IPv4 too, dual-stack), or 0.0.0.0 where IPv6 is unavailable. Port 0 takes
  // an ephemeral port (see port()); callers treat --admin-port=0 as "off" and do not construct
  // a server at all. Errors read "admin port 9901: address already in use".
  Status listen(const std::string& host, int port);
  // The bound port, once listening.
  int port() const { return server_->port(); }
  // The address listened on ("::" or "0.0.0.0" for an empty host).
  const std::string& host() const { return host_; }
  // Stops accepting and closes every connection; their memory is freed by the loop.
  void close() { server_->close(); }
  // Connections accepted and not yet closed.
  std::size_t open_connections() const { return server_->open_connections(); }
  // Connections closed to make room for a new one.
  std::size_t evicted() const { return server_->evicted(); }

 private:
  class Connection;  // per-connection state, in admin_server.cpp

  std::unique_ptr<TcpServer> make_server();

  uv_loop_t* loop_;
  Handler handler_;
  AdminServerOptions options_;
  std::unique_ptr<TcpServer> server_;
  std::string host_;
  bool listen_called_ = false;
};

}  // namespace knext
