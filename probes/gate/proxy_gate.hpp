#pragma once
#include <sys/socket.h>
#include <uv.h>

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <string>

#include "common/expected.hpp"
#include "common/uv_handle.hpp"
#include "probes/gate/accept_queue.hpp"
#include "probes/http/tcp_server.hpp"

namespace knext {

struct ProxyGateOptions {
  // A connection that has not sent its whole request line by then gets 408 and is closed (node's
  // headersTimeout). Once a connection is forwarded node's own timeouts apply to it.
  std::chrono::milliseconds head_timeout{60'000};
  // At most this many client connections (fewer when the fd limit cannot hold each with its
  // upstream connection); beyond that new ones are accepted and closed.
  std::size_t max_connections = 10'000;
  // At gate-open, held connections are released while the server's accept queue holds fewer
  // than this (or half its backlog), so a burst is not dropped or reset by the kernel.
  std::size_t release_window = 128;
};

// --gate=proxy, for servers the hook cannot reach: the launcher itself listens on the public
// PORT. Every connection is accepted (up to the cap); until open() it is held: the gate keeps
// its request line and at most 2 KiB, and reads no more, so the rest waits in the kernel. After
// open() each connection is piped byte for byte to the internal address, with backpressure (a side
// is not read while 64 KiB wait for its peer) and half-close passed through. A request whose first
// request line targets the ready path is answered here instead: 503 before open, 200 after, then
// closed. Everything runs on the loop's thread; SIGPIPE must be ignored (the supervisor does), so a
// peer that went away shows up as EPIPE instead of killing the launcher. A held connection with a
// whole request line waits for open(); the caller opens at warm or at the warm deadline, or exits.
class ProxyGate {
 public:
  ProxyGate(uv_loop_t* loop, std::string ready_path, ProxyGateOptions options = {});
  // Closes the listener and every connection; their memory goes with the close callbacks, so
  // run the loop afterwards (UvLoop's destructor does).
  ~ProxyGate();
  ProxyGate(const ProxyGate&) = delete;
  ProxyGate& operator=(const ProxyGate&) = delete;

  // Binds and listens on HOST:PORT (IPv4 or IPv6 literal; empty means 0.0.0.0; port 0 picks
  // one, see port()). The error names the address and port.
  Status listen(const std::string& host, int port);
  // Starts forwarding to the internal address (an IP literal or "localhost"); held connections
  // proceed. The error names the address when it is not usable.
  // Held connections are released at the pace the server accepts them (see release_window).
  Status open(const std::string& upstream_host, int upstream_port);
  // Stops accepting (shutdown); connections already accepted carry on.
  void close_listener();

  bool is_open() const { return open_; }
  int port() const { return server_.port(); }  // the bound public port, 0 when not listening
  // Accepted before open() and still waiting for it.
  size_t held_connections() const;
  // Every accepted connection not yet fully closed (held, forwarding or being answered here).
  size_t active_connections() const { return server_.open_connections(); }
  // The connection cap in force (options.max_connections, lowered to fit the fd limit).
  size_t max_connections() const { return server_.max_connections(); }
  // Connections closed at accept because the cap was reached.
  size_t refused_connections() const { return server_.refused(); }

 private:
  class Connection;
  friend class Connection;

  static TcpServerOptions server_options(const ProxyGateOptions& options);
  void release_held();

  uv_loop_t* loop_;
  std::string ready_path_;
  ProxyGateOptions options_;
  bool listen_called_ = false;
  bool open_ = false;
  sockaddr_storage upstream_{};
  int upstream_port_ = 0;
  // Every read lands here and is consumed (written on or copied) before the next read.
  std::unique_ptr<char[]> read_buffer_;
  // Held connections waiting for their upstream connect, oldest first, and the connects under way.
  std::list<Connection*> release_queue_;
  size_t connecting_ = 0;
  AcceptQueueProbe accept_queue_;
  Timer release_timer_;
  TcpServer server_;  // last: destroyed first, while what its connections use still exists
};

}  // namespace knext
