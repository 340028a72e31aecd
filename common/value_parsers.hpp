#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace knext {

// "25s", "500ms", "1.5s", "2m", "0"; a bare number means seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
std::string format_duration(std::chrono::milliseconds d);

std::optional<bool> parse_bool(std::string_view text);

// "256MiB", "1GiB", "512KiB", "100MB", "4096"; a bare number means bytes.
std::optional<uint64_t> parse_bytes(std::string_view text);

// A whole decimal number from min to max, nothing after it.
std::optional<int> parse_int(std::string_view text, int min, int max);

// A URL path as a flag value: starts with /, no spaces or control bytes.
bool is_url_path(std::string_view text);

}  // namespace knext
