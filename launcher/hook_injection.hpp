#pragma once
#include <string>
#include <utility>
#include <vector>

#include "common/expected.hpp"

namespace knext {

// Where knext-hook.cjs is: the configured path, else beside the binary, else the install share
// dir, else the source tree's runtime/ (for a build directory inside the checkout).
Expected<std::string> find_hook(const std::string& configured);

// The variables that make node load the hook: `--require "<hook>"` after whatever NODE_OPTIONS
// the user set in `env`, and KNEXT_GATE. KNEXT_CONTROL_FD is added at each spawn.
std::vector<std::pair<std::string, std::string>> hook_env(const std::vector<std::string>& env,
                                                          const std::string& hook_path);

}  // namespace knext
