#pragma once
#include <sys/socket.h>
#include <uv.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include "common/expected.hpp"
#include "common/uv_handle.hpp"

// The libuv TCP server under the admin endpoint and the proxy gate: it listens, accepts, owns
// every connection until its handles have closed, caps how many are open, and gives each one a
// timer for its idle and head timeouts. What a connection says is the subclass's business.
namespace knext {

// An IPv4 or IPv6 literal ("[::1]" too) and a port; empty means 0.0.0.0 and "localhost"
// 127.0.0.1. The error says "<host> is not an IP address".
Expected<sockaddr_storage> ip_address(const std::string& host, int port);

struct TcpServerOptions {
  std::size_t max_connections = 512;
  int backlog = 511;
  // When full: close the oldest evictable connection (see TcpConnection::set_evictable) that
  // has been open at least evict_min_age, and take the new one. Without such a connection, or
  // with evict_when_full off, the new connection is accepted and closed at once.
  bool evict_when_full = false;
  // A just-accepted connection may not have been read yet (a burst is accepted in one go), so
  // it is protected for this long.
  std::chrono::milliseconds evict_min_age{100};
};

class TcpServer;

// One accepted connection. Every libuv handle and request it uses (client, timer and whatever
// a subclass adds) must have `data` pointing at this TcpConnection (the base, see from()), and
// handles a subclass adds are closed through close_handle(). The object is freed after the last
// close callback, so write and connect callbacks that libuv cancels while closing still find it.
class TcpConnection {
 public:
  virtual ~TcpConnection() = default;
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  // Closes the client (with RST when `reset`), the timer and the subclass's handles.
  void close(bool reset = false);
  bool closing() const { return closing_; }

 protected:
  TcpConnection() = default;

  // The connection was accepted: start reading.
  virtual void on_accepted() = 0;
  // The timer started by arm_timer() fired. Default: close.
  virtual void on_timeout() { close(); }
  // Called once by close(): close_handle() each handle the subclass initialised.
  virtual void close_extra_handles(bool /*reset*/) {}

  uv_loop_t* loop() { return client_.loop; }
  uv_tcp_t* client_tcp() { return &client_; }
  uv_stream_t* client() { return reinterpret_cast<uv_stream_t*>(&client_); }
  void* self_data() { return static_cast<TcpConnection*>(this); }
  template <class Derived>
  static Derived& from(void* data) {
    return static_cast<Derived&>(*static_cast<TcpConnection*>(data));
  }

  // (Re)starts the connection's one timer; stop_timer() cancels it.
  void arm_timer(std::chrono::milliseconds timeout);
  void stop_timer();
  // While true (the default) the server may close this connection to make room for a new one.
  void set_evictable(bool evictable) { evictable_ = evictable; }
  void close_handle(uv_tcp_t* tcp, bool reset);

 private:
  friend class TcpServer;
  static void on_closed(uv_handle_t* handle);

  TcpServer* server_ = nullptr;  // null once closing
  std::list<std::unique_ptr<TcpConnection>>::iterator position_;
  uv_tcp_t client_{};
  uv_timer_t timer_{};
  uint64_t accepted_at_ = 0;  // uv_now
  int pending_closes_ = 0;
  bool client_ready_ = false;  // initialised, so it needs uv_close
  bool timer_ready_ = false;
  bool closing_ = false;
  bool evictable_ = true;
};

class TcpServer {
 public:
  using Factory = std::function<std::unique_ptr<TcpConnection>()>;

  TcpServer(uv_loop_t* loop, Factory factory, TcpServerOptions options = {});
  // Closes the listener and every connection; run the loop afterwards to free them.
  ~TcpServer();
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  // Binds and listens; port 0 takes an ephemeral port. An address that is not an IP literal is
  // EINVAL; libuv's errors come back as their errno with uv_strerror's text, nothing added.
  Status listen(const std::string& host, int port);
  int port() const { return port_; }  // the bound port, 0 when not listening
  bool listening() const { return port_ != 0; }
  // Stops accepting; open connections carry on.
  void close_listener();
  // Stops accepting and closes every connection.
  void close();

  std::size_t open_connections() const { return connections_.size(); }
  std::size_t max_connections() const { return options_.max_connections; }
  // Connections closed at accept because the server was full, and evicted to make room.
  std::size_t refused() const { return refused_; }
  std::size_t evicted() const { return evicted_; }
  // In accept order, oldest first.
  template <class F>
  void for_each(F f) {
    for (auto& c : connections_) f(*c);
  }
  template <class F>
  void for_each(F f) const {
    for (const auto& c : connections_) f(static_cast<const TcpConnection&>(*c));
  }

 private:
  friend class TcpConnection;
  void on_connection(int status);
  bool make_room();
  std::unique_ptr<TcpConnection> detach(TcpConnection& connection);

  uv_loop_t* loop_;
  Factory factory_;
  TcpServerOptions options_;
  UvHandle<uv_tcp_t> listener_;
  bool listen_called_ = false;
  int port_ = 0;
  std::size_t refused_ = 0;
  std::size_t evicted_ = 0;
  std::list<std::unique_ptr<TcpConnection>> connections_;
};

}  // namespace knext
