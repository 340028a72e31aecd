#include "bench/stop_on_signal.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "common/fd.hpp"

namespace knext::bench {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<unsigned long, std::function<void()>> actions;
  unsigned long next_id = 1;
};

Registry& registry() {
  static Registry r;
  return r;
}

int g_signal_pipe = -1;  // write end, for the handler

void on_signal(int sig) {
  unsigned char byte = static_cast<unsigned char>(sig);
  ssize_t ignored = write(g_signal_pipe, &byte, 1);
  (void)ignored;
}

}  // namespace

void stop_on_signal() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;  // no cleanup on signals; the default dispositions stay
  Fd read_end(fds[0]);
  g_signal_pipe = fds[1];
  std::thread([read_end = std::move(read_end)] {
    unsigned char sig = 0;
    while (read(read_end.get(), &sig, 1) < 0 && errno == EINTR) {
    }
    std::lock_guard lock(registry().mutex);
    for (auto it = registry().actions.rbegin(); it != registry().actions.rend(); ++it) it->second();
    _exit(128 + sig);
  }).detach();
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

OnStopSignal::OnStopSignal(std::function<void()> action) {
  std::lock_guard lock(registry().mutex);
  id_ = registry().next_id++;
  registry().actions.emplace(id_, std::move(action));
}

OnStopSignal::OnStopSignal(OnStopSignal&& other) noexcept : id_(std::exchange(other.id_, 0)) {}

OnStopSignal& OnStopSignal::operator=(OnStopSignal&& other) noexcept {
  if (this != &other) {
    OnStopSignal gone(std::move(*this));
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

OnStopSignal::~OnStopSignal() {
  if (id_ == 0) return;
  std::lock_guard lock(registry().mutex);
  registry().actions.erase(id_);
}

void terminate_pid(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0 || ::kill(pid, SIGTERM) != 0) return;
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (waitpid(pid, nullptr, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

StopChildOnSignal::StopChildOnSignal(std::chrono::milliseconds grace)
    : pid_(std::make_shared<std::atomic<pid_t>>(0)), on_stop_([pid = pid_, grace] {
        for (int i = 0; i < 400 && pid->load() == 0; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        terminate_pid(pid->load(), grace);
      }) {}

}  // namespace knext::bench
