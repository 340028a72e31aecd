#include "common/exit_status.hpp"

#include <sys/wait.h>

#include <cerrno>
#include <cstring>

namespace knext {

int exit_code_from_wait_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

std::string describe_wait_status(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with code " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    std::string out = "killed by signal " + std::to_string(WTERMSIG(wait_status)) + " (" +
                      sigabbrev_np(WTERMSIG(wait_status)) + ")";
    if (WCOREDUMP(wait_status)) out += ", core dumped";
    return out;
  }
  return "ended with wait status " + std::to_string(wait_status);
}

int exit_code_from_spawn_errno(int err) {
  return err == ENOENT || err == ENOTDIR ? 127 : 126;
}

}  // namespace knext
