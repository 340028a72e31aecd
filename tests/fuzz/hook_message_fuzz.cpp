// A line from the app's control fd: runtime/knext-hook.cjs writes them, but the app owns the fd.
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "launcher/hook_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto message = knext::parse_hook_message(line);
  if (!message) return 0;
  FUZZ_CHECK(line.size() <= knext::kMaxHookMessage);
  FUZZ_CHECK(line.find("\"type\"") != line.npos || line.find("\\u") != line.npos);
  for (const auto* s : {&message->type, &message->host, &message->public_host, &message->message,
                        &message->node_version}) {
    FUZZ_CHECK(s->size() <= line.size());
  }
  FUZZ_CHECK(message->port >= 0 && message->port <= 65535);
  FUZZ_CHECK(message->public_port >= 0 && message->public_port <= 65535);
  FUZZ_CHECK(message->pid >= 0);
  return 0;
}
