#include "probes/warm/node_rss.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace knext {

NodeRss::NodeRss(pid_t pid) {
  if (pid <= 0) return;
  std::string path = "/proc/" + std::to_string(pid) + "/statm";
  statm_ = Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
}

std::optional<uint64_t> NodeRss::bytes() const {
  if (!statm_.valid()) return std::nullopt;
  char buf[128];
  ssize_t n = ::pread(statm_.get(), buf, sizeof buf - 1, 0);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(buf, "%llu %llu", &size, &resident) != 2) return std::nullopt;
  long page = ::sysconf(_SC_PAGESIZE);
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(page > 0 ? page : 4096);
}

std::optional<uint64_t> cgroup_memory_limit() {
  std::ifstream self("/proc/self/cgroup");
  std::string line, group;
  while (std::getline(self, line)) {
    if (line.rfind("0::", 0) == 0) group = line.substr(3);
  }
  if (group.empty() || group.find("..") != std::string::npos) return std::nullopt;
  std::ifstream max("/sys/fs/cgroup" + (group == "/" ? std::string() : group) + "/memory.max");
  std::string text;
  if (!(max >> text) || text.empty() || text == "max") return std::nullopt;
  uint64_t bytes = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    bytes = bytes * 10 + static_cast<uint64_t>(c - '0');
  }
  return bytes > 0 ? std::optional<uint64_t>(bytes) : std::nullopt;
}

}  // namespace knext
