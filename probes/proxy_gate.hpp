#pragma once
#include <sys/socket.h>
#include <uv.h>

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/expected.hpp"
#include "launcher/uv_handle.hpp"

namespace knext {

// --gate=proxy, for servers the hook cannot reach: the launcher itself listens on the public
// PORT. Every connection is accepted; until open() it is held (its first bytes kept, reading
// paused past 64 KiB) rather than refused. After open() each connection is piped byte for byte
// to the internal address, with backpressure and half-close passed through. A request whose
// first request line targets the ready path is answered here instead: 503 before open, 200
// after, then closed. Everything runs on the loop's thread; SIGPIPE must be ignored (the
// supervisor does), so a peer that went away shows up as EPIPE instead of killing the launcher.
// No timeouts of its own: a held connection waits for open(); the caller opens at warm or at the
// warm deadline, or exits.
class ProxyGate {
 public:
  ProxyGate(uv_loop_t* loop, std::string ready_path);
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
  Status open(const std::string& upstream_host, int upstream_port);
  // Stops accepting (shutdown); connections already accepted carry on.
  void close_listener();

  bool is_open() const { return open_; }
  int port() const { return port_; }  // the bound public port, 0 when not listening
  // Accepted before open() and still waiting for it.
  size_t held_connections() const;
  // Every accepted connection not yet fully closed (held, forwarding or being answered here).
  size_t active_connections() const { return connections_.size(); }

 private:
  class Connection;
  friend class Connection;

  void on_connection(int status);
  void forget(Connection* connection);

  uv_loop_t* loop_;
  std::string ready_path_;
  UvHandle<uv_tcp_t> listener_;
  bool listen_called_ = false;
  int port_ = 0;
  bool open_ = false;
  sockaddr_storage upstream_{};
  // Every read lands here and is consumed (written on or copied) before the next read.
  std::unique_ptr<char[]> read_buffer_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
};

}  // namespace knext
