#include "launcher/leftovers.hpp"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

namespace knext {
namespace {

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(task_dir.c_str());
  if (dir == nullptr) return out;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in(task_dir + "/" + entry->d_name + "/children");
    pid_t child = 0;
    while (in >> child) out.push_back(child);
  }
  closedir(dir);
  return out;
}

// /proc may belong to another PID namespace (e.g. no --mount-proc); then its pids are not ours.
bool proc_matches_our_namespace() {
  char buf[32] = {};
  ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);
  return n > 0 && std::stol(std::string(buf, static_cast<size_t>(n))) == getpid();
}

}  // namespace

std::vector<pid_t> descendants_of(pid_t root) {
  std::vector<pid_t> out = children_of(root);
  for (size_t i = 0; i < out.size(); ++i) {
    auto grandchildren = children_of(out[i]);
    out.insert(out.end(), grandchildren.begin(), grandchildren.end());
  }
  return out;
}

int signal_leftovers(InitRole role, int signum) {
  if (role == InitRole::kPid1) {
    // The kernel limits kill(-1) to our PID namespace and never signals the caller.
    return kill(-1, signum) == 0 ? 1 : 0;
  }
  if (!proc_matches_our_namespace()) return 0;
  int count = 0;
  for (pid_t pid : descendants_of(getpid())) {
    if (kill(pid, signum) == 0) ++count;
  }
  return count;
}

}  // namespace knext
