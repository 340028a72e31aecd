// The prewarm manifest read back from the image or the cache volume at every cold start.
#include <cstdint>
#include <string_view>

#include "cachewarm/page_cache/manifest.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto manifest = knext::parse_manifest(text);
  if (!manifest) return 0;
  for (const auto& path : manifest->paths) FUZZ_CHECK(path.starts_with('/'));
  // What was read can be written and reads back the same.
  auto again = knext::format_manifest(*manifest);
  FUZZ_CHECK(again.ok());
  auto reread = knext::parse_manifest(*again);
  FUZZ_CHECK(reread.ok());
  FUZZ_CHECK(reread->build_id == manifest->build_id && reread->paths == manifest->paths);
  return 0;
}
