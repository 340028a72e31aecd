#pragma once
#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "common/fd.hpp"

namespace knext {

// One process's resident set size, from /proc/<pid>/statm opened once and re-read through
// that fd (the process's pid could be reused by the time of a later open).
class NodeRss {
 public:
  explicit NodeRss(pid_t pid);
  bool usable() const { return statm_.valid(); }
  // nullopt when the process is gone or the file does not parse.
  std::optional<uint64_t> bytes() const;

 private:
  Fd statm_;
};

// This cgroup's memory limit (cgroup v2 memory.max of /proc/self/cgroup's group), or nullopt
// without one ("max", cgroup v1, unreadable).
std::optional<uint64_t> cgroup_memory_limit();

}  // namespace knext
