#pragma once
#include <cstdint>
#include <optional>

#include "common/fd.hpp"

namespace knext {

// How full a local TCP listener's accept queue is: connections whose handshake the kernel has
// completed and the server has not accept()ed yet, and the most it holds (its listen backlog).
// Past that limit the kernel drops or resets new connections, so a client opening many at once
// (the proxy gate releasing what it held) watches this instead of guessing the server's pace.
struct AcceptQueue {
  uint32_t length = 0;
  uint32_t limit = 0;
};

// Asks the kernel (sock_diag netlink, no privileges needed) about the listener on `port`.
class AcceptQueueProbe {
 public:
  AcceptQueueProbe();
  // Nothing when the kernel cannot tell (no sock_diag) or nothing listens on the port.
  std::optional<AcceptQueue> read(int port);

 private:
  Fd socket_;
};

}  // namespace knext
