// The admin endpoint's and the proxy gate's request-head parser, fed what a client sends.
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "probes/http/http_head.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto result = knext::parse_request_head(input);
  if (result.bad()) {
    FUZZ_CHECK(result.status == 400 || result.status == 431);
    FUZZ_CHECK(!result.reason.empty());
  }
  if (!result.ok()) return 0;
  const auto& head = result.head;
  FUZZ_CHECK(head.head_length > 0 && head.head_length <= input.size());
  FUZZ_CHECK(head.head_length <= knext::kMaxRequestHead);
  FUZZ_CHECK(!head.method.empty() && !head.target.empty());
  // HTTP/1.x: a later minor version is served as 1.1 (RFC 9112, 2.3).
  FUZZ_CHECK(head.version.size() == 8 && head.version.starts_with("HTTP/1."));
  // Bytes after the head are the body: the head parses the same without them, and is still
  // incomplete (never bad) one byte short of its end.
  auto alone = knext::parse_request_head(input.substr(0, head.head_length));
  FUZZ_CHECK(alone.ok() && alone.head.head_length == head.head_length);
  FUZZ_CHECK(alone.head.target == head.target && alone.head.query == head.query);
  FUZZ_CHECK(knext::parse_request_head(input.substr(0, head.head_length - 1)).incomplete());
  return 0;
}
