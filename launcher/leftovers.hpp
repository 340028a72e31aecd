#pragma once
#include <sys/types.h>

#include <vector>

#include "launcher/init_process.hpp"

namespace knext {

// Processes left behind once the main child is gone: as PID 1 every other process in the
// namespace; as a subreaper our descendants as /proc shows them. Returns how many were signalled.
int signal_leftovers(InitRole role, int signum);

// Descendants of `root` from /proc/<pid>/task/<tid>/children, nearest first.
std::vector<pid_t> descendants_of(pid_t root);

}  // namespace knext
