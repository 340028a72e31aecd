#include "launcher/init_process.hpp"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace knext {

InitRole become_init() {
  if (getpid() == 1) return InitRole::kPid1;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0) return InitRole::kSubreaper;
  return InitRole::kPlainParent;
}

void reap_exited(const std::function<void(pid_t pid, int wait_status)>& on_reaped) {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      on_reaped(pid, status);
      continue;
    }
    if (pid < 0 && errno == EINTR) continue;
    return;  // 0: children remain but none exited; -1/ECHILD: none left
  }
}

bool has_children() {
  siginfo_t info{};
  int rc = waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
  return rc == 0;  // -1 with ECHILD means no children at all
}

}  // namespace knext
