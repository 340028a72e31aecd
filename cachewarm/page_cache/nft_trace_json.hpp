#pragma once
// The little JSON that Next's build output needs read here: a member of the top-level object,
// an array of strings, an object whose values are strings. Not a general parser: everything
// else is only checked and skipped. Malformed input is an error value (with the byte offset),
// never an exception; nesting is limited so hostile input cannot exhaust the stack.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/expected.hpp"

namespace knext::json {

// The text of the value of `key` in the object `object_text` (the first one if repeated).
// The whole object is checked, so a truncated file is an error even when the key comes first.
// A missing key is an error with code ENOENT.
Expected<std::string_view> member(std::string_view object_text, std::string_view key);

// `text` is one JSON string; its value with the escapes decoded (\uXXXX as UTF-8).
Expected<std::string> string_value(std::string_view text);

// `text` is an array of strings.
Expected<std::vector<std::string>> string_array(std::string_view text);

// `text` is an object whose values are all strings; members in file order.
Expected<std::vector<std::pair<std::string, std::string>>> string_map(std::string_view text);

}  // namespace knext::json
