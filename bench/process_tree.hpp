#pragma once
#include <sys/types.h>

#include <string_view>

namespace knext::bench {

// A field of /proc/<pid>/status in kB ("VmRSS:", "VmHWM:"); 0 when it cannot be read.
long proc_status_kb(pid_t pid, std::string_view key);

// The app server in the tree a variant started: the process with the largest resident set
// among `root` and its descendants (node, next to an init's or the launcher's few MB and the
// warm-up worker). `root` itself when it has no children.
pid_t largest_in_tree(pid_t root);

}  // namespace knext::bench
