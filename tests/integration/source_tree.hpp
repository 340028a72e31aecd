#pragma once
// Paths in the source tree for tests built with -DKNEXT_SOURCE_ROOT (see tests/meson.build).
#include <filesystem>
#include <string>

namespace knext::test {

inline const std::filesystem::path kRoot = KNEXT_SOURCE_ROOT;

// The pinned node that scripts/setup-node.sh installs.
inline std::string node_bin() {
  return (kRoot / ".deps" / "node" / "bin" / "node").string();
}

}  // namespace knext::test
