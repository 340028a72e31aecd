#include "launcher/hook_protocol.hpp"

#include <charconv>
#include <limits>

namespace knext {
namespace {

// Position just after `"key":` (whitespace skipped), or npos. Keys are matched at object
// level only as far as the hook's flat messages need.
size_t value_start(std::string_view json, std::string_view key) {
  std::string quoted;
  quoted.reserve(key.size() + 2);
  quoted.append(1, '"').append(key).append(1, '"');
  for (size_t at = json.find(quoted); at != std::string_view::npos;
       at = json.find(quoted, at + 1)) {
    size_t pos = at + quoted.size();
    while (pos < json.size() && (json[pos] == ' ' || json[pos] == '\t')) ++pos;
    if (pos < json.size() && json[pos] == ':') {
      ++pos;
      while (pos < json.size() && (json[pos] == ' ' || json[pos] == '\t')) ++pos;
      return pos;
    }
  }
  return std::string_view::npos;
}

}  // namespace

std::optional<std::string> json_string_field(std::string_view json, std::string_view key) {
  size_t pos = value_start(json, key);
  if (pos == std::string_view::npos || pos >= json.size() || json[pos] != '"') return std::nullopt;
  std::string out;
  for (++pos; pos < json.size(); ++pos) {
    char ch = json[pos];
    if (ch == '"') return out;
    if (ch == '\\' && pos + 1 < json.size()) {
      char esc = json[++pos];
      switch (esc) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'u':
          out.push_back('?');
          pos += 4;
          break;  // not needed beyond display
        default:
          out.push_back(esc);
      }
      continue;
    }
    out.push_back(ch);
  }
  return std::nullopt;
}

std::optional<long long> json_number_field(std::string_view json, std::string_view key) {
  size_t pos = value_start(json, key);
  if (pos == std::string_view::npos) return std::nullopt;
  long long value = 0;
  auto [end, ec] = std::from_chars(json.data() + pos, json.data() + json.size(), value);
  if (ec != std::errc{}) return std::nullopt;
  // 1e30 or 8080.5 is not a whole number that fits: not "1" or "8080".
  if (end != json.data() + json.size() && *end != ',' && *end != '}' && *end != ' ') {
    return std::nullopt;
  }
  return value;
}

std::optional<bool> json_bool_field(std::string_view json, std::string_view key) {
  size_t pos = value_start(json, key);
  if (pos == std::string_view::npos) return std::nullopt;
  if (json.substr(pos, 4) == "true") return true;
  if (json.substr(pos, 5) == "false") return false;
  return std::nullopt;
}

// A field that must fit [min, max]; anything else (2^32 + 8080 included) reads as 0, "none".
int bounded_field(std::string_view json, std::string_view key, long long min, long long max) {
  auto n = json_number_field(json, key);
  return n && *n >= min && *n <= max ? static_cast<int>(*n) : 0;
}

std::optional<HookMessage> parse_hook_message(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty() || line.front() != '{' || line.back() != '}') return std::nullopt;
  auto type = json_string_field(line, "type");
  if (!type) return std::nullopt;
  HookMessage m;
  m.type = *type;
  m.host = json_string_field(line, "host").value_or("");
  m.public_host = json_string_field(line, "publicHost").value_or("");
  m.port = bounded_field(line, "port", 1, 65535);
  m.public_port = bounded_field(line, "publicPort", 1, 65535);
  m.redirected = json_bool_field(line, "redirected").value_or(false);
  m.ok = json_bool_field(line, "ok").value_or(false);
  m.message =
      json_string_field(line, "message").value_or(json_string_field(line, "error").value_or(""));
  m.node_version = json_string_field(line, "node").value_or("");
  m.pid = bounded_field(line, "pid", 1, std::numeric_limits<int>::max());
  return m;
}

}  // namespace knext
