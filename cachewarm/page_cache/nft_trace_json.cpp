#include "cachewarm/page_cache/nft_trace_json.hpp"

#include <cerrno>

#include <fmt/format.h>

#include <boost/json.hpp>

namespace knext::json {
namespace {

namespace bj = boost::json;

constexpr std::size_t kMaxDepth = 64;

Expected<bj::object> parse_object(std::string_view text) {
  bj::parse_options options;
  options.max_depth = kMaxDepth;
  bj::parser parser(bj::storage_ptr(), options);
  bj::error_code ec;
  std::size_t used = parser.write(text.data(), text.size(), ec);
  if (ec) return Error{fmt::format("bad JSON at byte {}: {}", used, ec.message())};
  bj::value doc = parser.release();
  if (!doc.is_object()) return Error{"not a JSON object"};
  return std::move(doc.as_object());
}

Expected<std::string> as_string(const bj::value& v, std::string_view what) {
  const bj::string* s = v.if_string();
  if (s == nullptr) return Error{fmt::format("{} is not a string", what)};
  if (s->find('\0') != bj::string::npos) return Error{fmt::format("{} holds a NUL", what)};
  return std::string(*s);
}

Expected<const bj::value*> find(const Expected<bj::object>& doc, std::string_view key) {
  if (!doc) return doc.error();
  const bj::value* v = doc->if_contains(key);
  if (v == nullptr) return Error{fmt::format("no \"{}\" member", key), ENOENT};
  return v;
}

}  // namespace

Expected<std::vector<std::string>> string_array_member(std::string_view object_text,
                                                       std::string_view key) {
  auto doc = parse_object(object_text);
  auto member = find(doc, key);
  if (!member) return member.error();
  const bj::array* array = (*member)->if_array();
  if (array == nullptr) return Error{fmt::format("\"{}\": not an array", key)};
  std::vector<std::string> out;
  out.reserve(array->size());
  for (const auto& item : *array) {
    auto s = as_string(item, fmt::format("\"{}\": an element", key));
    if (!s) return s.error();
    out.push_back(std::move(*s));
  }
  return out;
}

Expected<std::string> string_member(std::string_view object_text, std::string_view key) {
  auto doc = parse_object(object_text);
  auto member = find(doc, key);
  if (!member) return member.error();
  return as_string(**member, fmt::format("\"{}\"", key));
}

Expected<std::vector<std::pair<std::string, std::string>>> string_map(std::string_view text) {
  auto doc = parse_object(text);
  if (!doc) return doc.error();
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(doc->size());
  for (const auto& [key, value] : *doc) {
    std::string name(key);
    if (name.find('\0') != std::string::npos) return Error{"a key holds a NUL"};
    auto s = as_string(value, fmt::format("\"{}\"", name));
    if (!s) return s.error();
    out.emplace_back(std::move(name), std::move(*s));
  }
  return out;
}

}  // namespace knext::json
