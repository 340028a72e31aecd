// `--warm-path auto`: discover_routes over a build whose five manifests are the input, split at
// NUL bytes (app-paths, pages, prerender, routes, required-server-files; a missing part is a
// missing file), the critical paths picked from what it found, and the --warm-skip glob matcher
// on the first two parts.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "probes/warm/critical_path.hpp"
#include "probes/warm/route_discovery.hpp"

namespace fs = std::filesystem;

namespace {

const fs::path& app_dir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("route-discovery-fuzz." + std::to_string(getpid()));
    fs::create_directories(d / ".next/server");
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  app_dir();
  std::atexit([] {  // registered after app_dir's static, so it runs before its destructor
    std::error_code ec;
    fs::remove_all(app_dir(), ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const kFiles[] = {
      ".next/server/app-paths-manifest.json", ".next/server/pages-manifest.json",
      ".next/prerender-manifest.json", ".next/routes-manifest.json",
      ".next/required-server-files.json"};
  constexpr int kParts = 5;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view parts[kParts];
  bool present[kParts] = {};
  for (int i = 0; i < kParts && !input.empty(); ++i) {
    auto end = input.find('\0');
    parts[i] = input.substr(0, end);
    present[i] = true;
    input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
  }
  for (int i = 0; i < kParts; ++i) {
    fs::path file = app_dir() / kFiles[i];
    if (!present[i]) {
      fs::remove(file);
      continue;
    }
    std::ofstream(file, std::ios::binary | std::ios::trunc)
        .write(parts[i].data(), static_cast<std::streamsize>(parts[i].size()));
  }
  if (auto found = knext::discover_routes(app_dir())) {
    for (const auto& route : found->routes) FUZZ_CHECK(!route.path.empty());
    auto critical = knext::auto_critical_paths(*found);
    FUZZ_CHECK(!critical.empty());
    for (const auto& path : critical) FUZZ_CHECK(path.starts_with('/'));
  } else {
    FUZZ_CHECK(!found.error().message.empty());
  }
  knext::warm_skip_matches(parts[0].substr(0, 128), parts[1].substr(0, 128));
  return 0;
}
