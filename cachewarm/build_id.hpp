#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace knext {

// [A-Za-z0-9_-], 1 to 64 characters: safe as one path component and in log lines.
bool valid_build_id(std::string_view id);

// Which build of the app this is, so each build gets its own compile cache directory:
// <app_dir>/.next/BUILD_ID (trimmed) when valid, else a hex FNV-1a 64 hash of
// <app_dir>/server.js, else "unknown".
std::string read_build_id(const std::string& app_dir);

uint64_t fnv1a64(std::string_view bytes, uint64_t hash = 0xcbf29ce484222325ULL);

}  // namespace knext
