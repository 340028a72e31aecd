#include "probes/gate/accept_queue.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>

namespace knext {
namespace {

constexpr uint32_t kListenState = 10;  // TCP_LISTEN in the kernel's numbering

// One dump of the listeners of `family` on `port`; the first match wins.
std::optional<AcceptQueue> query(int fd, uint8_t family, int port) {
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof(message);
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.request.sdiag_family = family;
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = 1u << kListenState;
  message.request.id.idiag_sport = htons(static_cast<uint16_t>(port));
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &message, sizeof(message), 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof(kernel)) < 0) {
    return std::nullopt;
  }
  std::optional<AcceptQueue> found;
  alignas(nlmsghdr) std::array<char, 8192> buffer;
  while (true) {
    ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    auto* header = reinterpret_cast<nlmsghdr*>(buffer.data());
    for (int left = static_cast<int>(n); NLMSG_OK(header, left);
         header = NLMSG_NEXT(header, left)) {
      if (header->nlmsg_type == NLMSG_DONE) return found;
      if (header->nlmsg_type == NLMSG_ERROR) return std::nullopt;
      if (header->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      auto* diag = static_cast<inet_diag_msg*>(NLMSG_DATA(header));
      if (!found && ntohs(diag->id.idiag_sport) == port) {
        found = AcceptQueue{diag->idiag_rqueue, diag->idiag_wqueue};
      }
    }
  }
}

}  // namespace

AcceptQueueProbe::AcceptQueueProbe()
    : socket_(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) {}

std::optional<AcceptQueue> AcceptQueueProbe::read(int port) {
  if (!socket_.valid()) return std::nullopt;
  if (auto v4 = query(socket_.get(), AF_INET, port)) return v4;
  return query(socket_.get(), AF_INET6, port);
}

}  // namespace knext
