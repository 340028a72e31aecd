#pragma once
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace knext::test {

// The kernel's count of connections a listener's full accept queue dropped (TcpExt
// ListenOverflows in /proc/net/netstat, per network namespace); -1 when it cannot be read.
inline long listen_overflows() {
  std::ifstream in("/proc/net/netstat");
  std::string names, values;
  while (std::getline(in, names) && std::getline(in, values)) {
    if (names.rfind("TcpExt:", 0) != 0) continue;
    std::istringstream n(names), v(values);
    for (std::string name, value; n >> name && v >> value;) {
      if (name == "ListenOverflows") return std::stol(value);
    }
  }
  return -1;
}

}  // namespace knext::test
