#pragma once
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace knext {

// Where knext-hook.cjs is: the configured path, else beside the binary, else the install share
// dir, else the source tree's runtime/ (for a build directory inside the checkout).
Expected<std::string> find_hook(const std::string& configured);

// Adds `--require "<hook>"` after whatever NODE_OPTIONS the user set, and the control settings.
void inject_hook(std::vector<std::string>& env, const std::string& hook_path, int control_fd);

}  // namespace knext
