#pragma once
// The prewarm manifest: the files the first render reads, in the order node first used them,
// recorded by the hook during `--prewarm` and read back at every cold start.
//
//   # knext-prewarm-manifest v1
//   # build-id 8Xb1YpQ2sZ
//   /app/server.js
//   /app/node_modules/next/dist/server/lib/start-server.js
//   ...
//
// One absolute path per line. Other lines starting with '#' are comments (a later v1 writer may
// add some); blank lines are ignored. Paths are bytes: anything but NUL and newline, no quoting.
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace knext {

inline constexpr std::string_view kManifestHeader = "# knext-prewarm-manifest v1";

struct PrewarmManifest {
  std::string build_id;            // the build it was recorded for; empty: not recorded
  std::vector<std::string> paths;  // absolute, first use first, each once
};

// Where `--prewarm` puts it: <app_dir>/.next/knext-prewarm-manifest.txt, beside BUILD_ID.
std::string manifest_path_for(const std::string& app_dir);

// Errors name the line: a missing or other-version header, a relative path, a bad build id.
// Repeated paths keep their first place.
Expected<PrewarmManifest> parse_manifest(std::string_view text);
// Errors on a path that is not absolute or holds a newline or NUL, and on a bad build id.
Expected<std::string> format_manifest(const PrewarmManifest& manifest);

// read_text_file (16 MiB at most) + parse_manifest.
Expected<PrewarmManifest> read_manifest(const std::string& path);
// format_manifest + write_file_atomically: a crash leaves the old manifest or the new one.
Status write_manifest(const std::string& path, const PrewarmManifest& manifest);

}  // namespace knext
