#pragma once
#include <filesystem>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace knext {

inline constexpr std::string_view kDeletedSuffix = " (deleted)";

inline bool replaced_since_start(const std::string& link) {
  return link.size() > kDeletedSuffix.size() &&
         link.compare(link.size() - kDeletedSuffix.size(), kDeletedSuffix.size(), kDeletedSuffix) ==
             0;
}

// This program's own binary (/proc/self/exe): where its helpers and runtime files live. If the
// file was replaced since this process started (a rebuild, an upgrade in place), the path it
// had: the helpers beside it are the new ones.
inline Expected<std::filesystem::path> self_exe() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return Error{"cannot read /proc/self/exe: " + ec.message(), ec.value()};
  std::string link = path.string();
  if (replaced_since_start(link)) link.resize(link.size() - kDeletedSuffix.size());
  return std::filesystem::path(link);
}

// A helper program installed beside this one (knext-bench, knext-slowfs, knext-launch).
inline Expected<std::filesystem::path> beside_self(std::string_view program) {
  auto self = self_exe();
  if (!self) return self.error();
  return self->parent_path() / program;
}

// A command that starts that helper: its path, or its name (from PATH) when /proc is not mounted.
inline std::string beside_self_command(std::string_view program) {
  auto path = beside_self(program);
  return path ? path->string() : std::string(program);
}

// A command that starts a copy of this very program: its path, or /proc/self/exe itself when
// the file was replaced since start (execve of /proc/self/exe still runs this binary);
// "knext-launch" (from PATH) when /proc is not mounted.
inline std::string self_command() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "knext-launch";
  return replaced_since_start(path.string()) ? "/proc/self/exe" : path.string();
}

}  // namespace knext
