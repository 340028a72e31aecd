#include "launcher/hook_injection.hpp"

#include <unistd.h>

#include <filesystem>

#include "common/self_exe.hpp"
#include "common/spawn.hpp"

namespace knext {
namespace fs = std::filesystem;

Expected<std::string> find_hook(const std::string& configured) {
  std::error_code ec;
  if (!configured.empty()) {
    if (fs::is_regular_file(configured, ec)) return fs::absolute(configured, ec).string();
    return Error{"hook file '" + configured + "' " +
                 (fs::exists(configured, ec) ? "is not a regular file" : "does not exist")};
  }
  auto exe = self_exe();
  if (!exe) return Error{exe.error().message + " to find knext-hook.cjs"};
  fs::path dir = exe->parent_path();
  std::string looked;
  for (const fs::path& candidate :
       {dir / "knext-hook.cjs", dir / ".." / "share" / "knext-launch" / "knext-hook.cjs",
        dir / ".." / "runtime" / "knext-hook.cjs"}) {
    if (fs::is_regular_file(candidate, ec)) return fs::weakly_canonical(candidate, ec).string();
    looked += (looked.empty() ? "" : ", ") + candidate.string();
  }
  return Error{"knext-hook.cjs not found (looked in " + looked + ")"};
}

std::vector<std::pair<std::string, std::string>> hook_env(const std::vector<std::string>& env,
                                                          const std::string& hook_path) {
  std::string quoted = "\"";
  for (char ch : hook_path) {
    if (ch == '"' || ch == '\\') quoted.push_back('\\');
    quoted.push_back(ch);
  }
  quoted += "\"";
  std::string options = get_env(env, "NODE_OPTIONS").value_or("");
  if (!options.empty()) options += " ";
  options += "--require " + quoted;
  return {{"NODE_OPTIONS", options}, {"KNEXT_GATE", "handoff"}};
}

}  // namespace knext
