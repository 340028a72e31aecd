#include "probes/warm/thread_cpu.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <string>
#include <string_view>

namespace knext {
namespace {

Fd open_proc(pid_t pid, const char* file) {
  if (pid <= 0) return Fd();
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  return Fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
}

std::string_view read_all(const Fd& fd, char* buf, size_t size) {
  ssize_t n = pread(fd.get(), buf, size, 0);
  return n > 0 ? std::string_view(buf, static_cast<size_t>(n)) : std::string_view();
}

}  // namespace

ThreadCpu::ThreadCpu(pid_t pid)
    : schedstat_(open_proc(pid, "schedstat")), stat_(open_proc(pid, "stat")) {}

std::optional<CpuSample> ThreadCpu::sample(double at_ms) const {
  if (!usable()) return std::nullopt;
  char buf[1024];
  std::string_view sched = read_all(schedstat_, buf, sizeof buf);
  unsigned long long run_ns = 0;
  auto [end, ec] = std::from_chars(sched.data(), sched.data() + sched.size(), run_ns);
  if (ec != std::errc{} || end == sched.data()) return std::nullopt;
  CpuSample s;
  s.at_ms = at_ms;
  s.cpu_ms = static_cast<double>(run_ns) / 1e6;
  // "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'.
  std::string_view stat = read_all(stat_, buf, sizeof buf);
  auto close = stat.rfind(')');
  if (close == std::string_view::npos || close + 2 >= stat.size()) return std::nullopt;
  s.sleeping = stat[close + 2] == 'S';
  return s;
}

}  // namespace knext
