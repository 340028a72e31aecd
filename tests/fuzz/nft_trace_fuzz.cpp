// A .nft.json trace of Next's build (and required-server-files.json, read the same way): the
// JSON readers directly, then read_nft_trace on the bytes as a file.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "cachewarm/page_cache/nft_trace.hpp"
#include "cachewarm/page_cache/nft_trace_json.hpp"
#include "common/fd.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto files = knext::json::string_array_member(text, "files")) {
    for (const auto& f : *files) FUZZ_CHECK(f.find('\0') == std::string::npos);
  }
  if (auto dir = knext::json::string_member(text, "relativeAppDir")) {
    FUZZ_CHECK(dir->find('\0') == std::string::npos);
  }

  // An anonymous file holds the bytes: read_nft_trace reads a path, /proc/self/fd/N is one.
  static const int fd = memfd_create("trace.nft.json", 0);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(ftruncate(fd, 0) == 0);
  FUZZ_CHECK(pwrite(fd, data, size, 0) == static_cast<ssize_t>(size));
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (auto paths = knext::read_nft_trace(path)) {
    for (const auto& p : *paths) FUZZ_CHECK(!p.empty());
  }
  return 0;
}
