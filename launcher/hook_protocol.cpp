#include "launcher/hook_protocol.hpp"

#include <limits>

#include <boost/json.hpp>

namespace knext {
namespace {

namespace json = boost::json;

// The deepest message is "flushed" with its "postwarm" object.
constexpr std::size_t kMaxDepth = 8;

const json::string* string_of(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr ? v->if_string() : nullptr;
}

std::string string_field(const json::object& o, std::string_view key) {
  const json::string* s = string_of(o, key);
  return s != nullptr ? std::string(*s) : std::string();
}

bool bool_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_bool() && v->get_bool();
}

// A whole number that must fit [min, max]; anything else (2^32 + 8080, 1e30, 8080.5, "8080")
// reads as 0, "none". Numbers above INT64_MAX parse as uint64 and are out of range too.
int bounded_field(const json::object& o, std::string_view key, long long min, long long max) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_int64()) return 0;
  long long n = v->get_int64();
  return n >= min && n <= max ? static_cast<int>(n) : 0;
}

std::vector<std::pair<std::string, long long>> paths_field(const json::object& o) {
  std::vector<std::pair<std::string, long long>> out;
  const json::value* v = o.if_contains("paths");
  const json::object* paths = v != nullptr ? v->if_object() : nullptr;
  if (paths == nullptr) return out;
  for (const auto& [key, count] : *paths) {
    if (out.size() >= kMaxTrafficPaths) break;
    if (!count.is_int64() || count.get_int64() < 1) continue;
    out.emplace_back(std::string(key), count.get_int64());
  }
  return out;
}

}  // namespace

std::optional<HookMessage> parse_hook_message(std::string_view line) {
  if (line.size() > kMaxHookMessage) return std::nullopt;
  json::parse_options options;
  options.max_depth = kMaxDepth;
  json::error_code ec;
  json::value doc = json::parse(line, ec, json::storage_ptr(), options);
  const json::object* o = ec ? nullptr : doc.if_object();
  if (o == nullptr) return std::nullopt;
  const json::string* type = string_of(*o, "type");
  if (type == nullptr) return std::nullopt;

  HookMessage m;
  m.type = std::string(*type);
  m.host = string_field(*o, "host");
  m.public_host = string_field(*o, "publicHost");
  m.port = bounded_field(*o, "port", 1, 65535);
  m.public_port = bounded_field(*o, "publicPort", 1, 65535);
  m.redirected = bool_field(*o, "redirected");
  m.ok = bool_field(*o, "ok");
  m.message = string_of(*o, "message") ? string_field(*o, "message") : string_field(*o, "error");
  m.node_version = string_field(*o, "node");
  m.pid = bounded_field(*o, "pid", 1, std::numeric_limits<int>::max());
  m.state = string_field(*o, "state");
  m.pages = bounded_field(*o, "pages", 0, 10'000'000);
  m.ms = bounded_field(*o, "ms", 0, std::numeric_limits<int>::max());
  if (m.type == "traffic") m.paths = paths_field(*o);
  return m;
}

}  // namespace knext
