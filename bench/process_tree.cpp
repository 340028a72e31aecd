#include "bench/process_tree.hpp"

#include <fmt/format.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <string>

namespace knext::bench {

long proc_status_kb(pid_t pid, std::string_view key) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string word;
  while (status >> word) {
    if (word == key) {
      long kb = 0;
      status >> kb;
      return kb;
    }
    status.ignore(4096, '\n');
  }
  return 0;
}

pid_t largest_in_tree(pid_t root) {
  constexpr size_t kMaxProcesses = 256;
  pid_t best = root;
  long best_kb = proc_status_kb(root, "VmRSS:");
  std::deque<pid_t> todo{root};
  size_t seen = 0;
  while (!todo.empty() && seen++ < kMaxProcesses) {
    pid_t pid = todo.front();
    todo.pop_front();
    std::error_code ec;
    for (const auto& task :
         std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), ec)) {
      std::ifstream children(task.path() / "children");
      pid_t child = 0;
      while (children >> child) {
        todo.push_back(child);
        if (long kb = proc_status_kb(child, "VmRSS:"); kb > best_kb) {
          best = child;
          best_kb = kb;
        }
      }
    }
  }
  return best;
}

}  // namespace knext::bench
