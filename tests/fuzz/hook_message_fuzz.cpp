// A line from the app's control fd: runtime/knext-hook.cjs writes them, but the app owns the fd.
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "launcher/hook_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto message = knext::parse_hook_message(line);
  if (message) FUZZ_CHECK(!message->type.empty() || line.find("\"type\"") != line.npos);
  for (std::string_view key : {"type", "message", "host", "node", "error"}) {
    if (auto s = knext::json_string_field(line, key)) FUZZ_CHECK(s->size() <= line.size());
  }
  for (std::string_view key : {"port", "publicPort", "pid"}) knext::json_number_field(line, key);
  for (std::string_view key : {"ok", "redirected"}) knext::json_bool_field(line, key);
  return 0;
}
