// The pages file (knext-prewarm-pages.txt) read back from the image or the cache volume.
#include <cstdint>
#include <string_view>

#include "cachewarm/page_cache/mapped_pages_file.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto files = knext::parse_mapped_pages(text);
  if (!files) return 0;
  // What was read can be written and reads back the same.
  auto again = knext::format_mapped_pages(*files);
  FUZZ_CHECK(again.ok());
  auto reread = knext::parse_mapped_pages(*again);
  FUZZ_CHECK(reread.ok() && reread->size() == files->size());
  for (size_t i = 0; i < files->size(); ++i) {
    const auto& a = (*files)[i];
    const auto& b = (*reread)[i];
    FUZZ_CHECK(a.path == b.path && a.size == b.size && a.mtime_ns == b.mtime_ns);
    FUZZ_CHECK(a.ranges == b.ranges);
  }
  return 0;
}
