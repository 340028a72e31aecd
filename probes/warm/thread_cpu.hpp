#pragma once
#include <sys/types.h>

#include <optional>

#include "common/fd.hpp"
#include "probes/warm/warm_convergence.hpp"

namespace knext {

// Samples one process's main thread (node's JavaScript thread) from /proc: CPU time in ns
// resolution (schedstat) and whether it sleeps interruptibly (stat state S). The files are
// opened once and re-read through the same fds.
class ThreadCpu {
 public:
  explicit ThreadCpu(pid_t pid);
  bool usable() const { return schedstat_.valid() && stat_.valid(); }
  // nullopt when the process is gone or a file does not parse.
  std::optional<CpuSample> sample(double at_ms) const;

 private:
  Fd schedstat_;
  Fd stat_;
};

}  // namespace knext
