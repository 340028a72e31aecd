#pragma once
#include <string>

namespace knext {

// What the container runtime sees: the child's exit code, or 128+N when it died of signal N.
int exit_code_from_wait_status(int wait_status);
std::string describe_wait_status(int wait_status);

// Shell conventions for a command that could not be executed: 127 not found, 126 otherwise.
int exit_code_from_spawn_errno(int err);

}  // namespace knext
