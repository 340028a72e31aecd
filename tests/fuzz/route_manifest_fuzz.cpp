// Next's route manifests (app-paths-manifest.json, pages-manifest.json: route -> file) and the
// warm path matched against them. The first line is the warm path, the rest the manifest.
#include <cstdint>
#include <string_view>
#include <vector>

#include "cachewarm/page_cache/nft_trace.hpp"
#include "cachewarm/page_cache/nft_trace_json.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto nl = input.find('\n');
  std::string_view warm_path = input.substr(0, nl);
  std::string_view manifest = nl == input.npos ? std::string_view() : input.substr(nl + 1);
  auto map = knext::json::string_map(manifest);
  if (!map) return 0;
  std::vector<knext::PageRoute> routes;
  for (const auto& [route, file] : *map) routes.push_back({route, file});
  auto match = knext::match_route(routes, warm_path);
  if (match) {
    bool listed = false;
    for (const auto& r : routes)
      listed = listed || (r.route == match->route && r.file == match->file);
    FUZZ_CHECK(listed);
  }
  return 0;
}
