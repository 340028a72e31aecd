#pragma once
// The JSON of Next's build output read here (.nft.json traces, required-server-files.json,
// route manifests), parsed with Boost.JSON. Malformed input or the wrong shape is an error value
// naming what was wrong (with the byte offset for bad JSON), never an exception; nesting is
// limited so hostile input cannot exhaust the stack. A string holding NUL is refused: no path
// or route has one.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/expected.hpp"

namespace knext::json {

// The array of strings that is member `key` of the object `object_text`. The whole text is
// checked, so a truncated file is an error even when the key comes first. A missing key is an
// error with code ENOENT.
Expected<std::vector<std::string>> string_array_member(std::string_view object_text,
                                                       std::string_view key);

// The string that is member `key` of the object `object_text`; missing: ENOENT.
Expected<std::string> string_member(std::string_view object_text, std::string_view key);

// `text` is an object whose values are all strings; members in file order.
Expected<std::vector<std::pair<std::string, std::string>>> string_map(std::string_view text);

}  // namespace knext::json
