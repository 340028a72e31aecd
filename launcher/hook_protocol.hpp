#pragma once
#include <optional>
#include <string>
#include <string_view>

// The launcher's side of the line protocol with runtime/knext-hook.cjs (runtime/README.md):
// one flat JSON object per line.
namespace knext {

struct HookMessage {
  std::string type;  // hello | listening | opened | ungated | flushed | error
  std::string host;
  std::string public_host;  // the host the app asked to listen on ('' = all)
  int port = 0;
  int public_port = 0;
  bool redirected = false;
  bool ok = false;
  std::string message;  // error text
  std::string node_version;
  int pid = 0;  // hello: node's pid
};

// nullopt for a line that is not a JSON object with a "type".
std::optional<HookMessage> parse_hook_message(std::string_view line);

// Flat-JSON field readers, enough for the hook's messages.
std::optional<std::string> json_string_field(std::string_view json, std::string_view key);
std::optional<long long> json_number_field(std::string_view json, std::string_view key);
std::optional<bool> json_bool_field(std::string_view json, std::string_view key);

}  // namespace knext
