#pragma once
// Which route of the build a requested path belongs to, by the page pattern's segments:
// "[x]" is one segment, "[...x]" one or more, "[[...x]]" zero or more; anything else must be
// equal. Plain segment comparison, linear in the path: patterns and paths are outside input.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace knext {

// The path's segments ("/a//b/" -> {"a", "b"}).
std::vector<std::string_view> path_segments(std::string_view path);

// The pattern (basePath not included) matches the path (basePath already stripped).
bool route_pattern_matches(std::string_view pattern, std::string_view path);

// The index in `patterns` of the route serving `path`, as Next picks it: at the first segment
// where two matching patterns differ, a static segment wins over "[x]", which wins over
// "[...x]", which wins over "[[...x]]". nullopt when none matches.
std::optional<size_t> match_route(const std::vector<std::string>& patterns, std::string_view path);

// `path` without the basePath ("" for none): "/docs/a" -> "/a", "/docs" -> "/"; nullopt when
// the path is not under it.
std::optional<std::string_view> strip_base_path(std::string_view path, std::string_view base);

}  // namespace knext
