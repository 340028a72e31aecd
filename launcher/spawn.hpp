#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

#include "common/expected.hpp"

namespace knext {

struct SpawnRequest {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH unless it has a '/'
  std::vector<std::string> env;   // the child's whole environment, "NAME=value"
  bool new_process_group = false;
};

// Starts the child with an empty signal mask and every signal at its default disposition,
// inheriting cwd and stdio. On failure Error::code is errno from the exec.
Expected<pid_t> spawn_child(const SpawnRequest& request);

std::vector<std::string> current_environment();

}  // namespace knext
