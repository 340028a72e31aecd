#pragma once
#include "common/expected.hpp"
#include "common/fd.hpp"

namespace knext {

// Keeps the kernel from handing PORT out as an ephemeral port while the app is held on its
// internal one: the hook's listen on 127.0.0.1:0, or a warm-up connect's local port, could
// otherwise get PORT itself when PORT lies in ip_local_port_range, and the public listen would
// then fail. A socket bound to 0.0.0.0:PORT with SO_REUSEADDR that never listens: Linux lets
// node's own SO_REUSEADDR listener bind and listen on PORT beside it (two reuse sockets conflict
// only once one listens), while the ephemeral search, which does not relax reuse, skips PORT.
class PortReservation {
 public:
  static Expected<PortReservation> hold(int port);

 private:
  explicit PortReservation(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

}  // namespace knext
