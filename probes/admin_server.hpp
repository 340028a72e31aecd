#pragma once
#include <uv.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/expected.hpp"
#include "launcher/uv_handle.hpp"
#include "probes/http_head.hpp"

namespace knext {

struct AdminServerOptions {
  // A connection that has not sent a whole request head by then (or not taken its answer and
  // closed after it) is closed.
  std::chrono::milliseconds read_timeout{5'000};
  // Connections beyond this are accepted and closed at once, so a flood cannot exhaust fds.
  std::size_t max_connections = 512;
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

  // Binds host:port (IPv4 or IPv6 literal) and starts accepting. Port 0 takes an ephemeral port
  // (see port()); callers treat --admin-port=0 as "off" and do not construct a server at all.
  // Errors read "admin port 9901: address already in use".
  Status listen(const std::string& host, int port);
  // The bound port, once listening.
  int port() const { return port_; }
  // Stops accepting and closes every connection; their memory is freed by the loop.
  void close();
  // Connections accepted and not yet closed.
  std::size_t open_connections() const { return connections_.size(); }

 private:
  class Connection;  // per-connection state, in admin_server.cpp

  void on_connection(int status);
  void close_connection(Connection* connection);

  uv_loop_t* loop_;
  Handler handler_;
  AdminServerOptions options_;
  UvHandle<uv_tcp_t> listener_;
  int port_ = 0;
  bool listen_called_ = false;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
};

}  // namespace knext
