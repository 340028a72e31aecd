#pragma once
#include <filesystem>

#include "common/expected.hpp"

namespace knext {

// This program's own binary (/proc/self/exe): where its helpers and runtime files live.
inline Expected<std::filesystem::path> self_exe() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return Error{"cannot read /proc/self/exe: " + ec.message(), ec.value()};
  return path;
}

// The same as a command name for spawning copies of this program; "knext-launch" (from PATH)
// when /proc is not mounted.
inline std::string self_command() {
  auto path = self_exe();
  return path ? path->string() : "knext-launch";
}

}  // namespace knext
