#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace knext {

// "25s", "500ms", "1.5s", "2m", "0"; a bare number means seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
std::string format_duration(std::chrono::milliseconds d);

std::optional<bool> parse_bool(std::string_view text);

}  // namespace knext
