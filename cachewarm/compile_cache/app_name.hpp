#pragma once
// The default <app> folder on a shared cache volume. Every Next.js app runs from
// .next/standalone, so the directory's own name would put all apps in one folder under one
// eviction cap.
#include <string>

namespace knext {

// `name` of <app_dir>/package.json (opened without following a symlink, a regular file of at
// most 64 KiB, parsed as JSON); else, for <x>/.next/standalone, x's name; else app_dir's name.
// Unsafe characters are left for cache_app_name to replace.
std::string default_app_name(const std::string& app_dir);

}  // namespace knext
