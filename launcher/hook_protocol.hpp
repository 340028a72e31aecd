#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The launcher's side of the line protocol with runtime/knext-hook.cjs (runtime/README.md):
// one JSON object per line, its fields read by name in any order.
namespace knext {

// A control message longer than this is not read.
inline constexpr std::size_t kMaxHookMessage = 64 * 1024;
// traffic: the hook counts at most this many distinct paths; more in a message are ignored.
inline constexpr std::size_t kMaxTrafficPaths = 200;

struct HookMessage {
  std::string type;  // hello | listening | opened | ungated | flushed | error | traffic | ...
  std::string host;
  std::string public_host;  // the host the app asked to listen on ('' = all)
  int port = 0;
  int public_port = 0;
  bool redirected = false;
  bool ok = false;
  std::string message;  // error text
  std::string node_version;
  int pid = 0;        // hello: node's pid
  std::string state;  // next-preload: deferred | done | unsupported
  int pages = 0;      // next-preload done: routes loaded
  int ms = 0;         // next-preload done: how long it took
  // traffic: requested path -> user requests since the last report (whole numbers >= 1 only)
  std::vector<std::pair<std::string, long long>> paths;
};

// nullopt for a line that is not a JSON object with a string "type" (or is longer than
// kMaxHookMessage). A field of the wrong type or out of range reads as its default.
std::optional<HookMessage> parse_hook_message(std::string_view line);

}  // namespace knext
