#include "common/port_reservation.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace knext {

Expected<PortReservation> PortReservation::hold(int port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Error{std::string("socket: ") + std::strerror(errno), errno};
  int on = 1;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) {
    return Error{std::string("SO_REUSEADDR: ") + std::strerror(errno), errno};
  }
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_port = htons(static_cast<uint16_t>(port));
  any.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&any), sizeof any) != 0) {
    return Error{"bind 0.0.0.0:" + std::to_string(port) + ": " + std::strerror(errno), errno};
  }
  return PortReservation(std::move(fd));
}

}  // namespace knext
