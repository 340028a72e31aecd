#pragma once
#include <netinet/in.h>

#include <optional>
#include <string_view>

#include "common/expected.hpp"

namespace knext {

sockaddr_in loopback_address(int port);  // 127.0.0.1:port
// A port the kernel just handed out on 127.0.0.1 (free at the time of the call).
Expected<int> free_loopback_port();
// One TCP connect to 127.0.0.1:port; true if it completed.
bool loopback_accepts(int port);
// A TCP port number as PORT gives it: digits only, 1 to 65535.
std::optional<int> parse_port(std::string_view text);

}  // namespace knext
