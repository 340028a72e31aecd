#include "probes/warm/route_match.hpp"

#include <algorithm>

namespace knext {
namespace {

enum class Kind { kStatic = 0, kOne = 1, kOneOrMore = 2, kZeroOrMore = 3 };

Kind kind_of(std::string_view segment) {
  if (segment.starts_with("[[...") && segment.ends_with("]]")) return Kind::kZeroOrMore;
  if (segment.starts_with("[...") && segment.ends_with("]")) return Kind::kOneOrMore;
  if (segment.size() >= 3 && segment.front() == '[' && segment.back() == ']') return Kind::kOne;
  return Kind::kStatic;
}

// A catch-all must be last in a Next.js pattern; anything after one does not match here.
bool matches(const std::vector<std::string_view>& pattern,
             const std::vector<std::string_view>& path) {
  size_t i = 0;
  for (; i < pattern.size(); ++i) {
    Kind k = kind_of(pattern[i]);
    if (k == Kind::kZeroOrMore) return i + 1 == pattern.size();
    if (k == Kind::kOneOrMore) return i + 1 == pattern.size() && i < path.size();
    if (i >= path.size()) return false;
    if (k == Kind::kStatic && pattern[i] != path[i]) return false;
  }
  return i == path.size();
}

std::vector<Kind> kinds(const std::vector<std::string_view>& pattern) {
  std::vector<Kind> out;
  out.reserve(pattern.size());
  for (auto s : pattern) out.push_back(kind_of(s));
  return out;
}

}  // namespace

std::vector<std::string_view> path_segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

bool route_pattern_matches(std::string_view pattern, std::string_view path) {
  return matches(path_segments(pattern), path_segments(path));
}

std::optional<size_t> match_route(const std::vector<std::string>& patterns, std::string_view path) {
  const auto segments = path_segments(path);
  std::optional<size_t> best;
  std::vector<Kind> best_kinds;
  for (size_t i = 0; i < patterns.size(); ++i) {
    auto pattern = path_segments(patterns[i]);
    if (!matches(pattern, segments)) continue;
    auto k = kinds(pattern);
    // Lexicographic on the kinds: the more specific pattern at the first difference wins.
    if (!best ||
        std::lexicographical_compare(k.begin(), k.end(), best_kinds.begin(), best_kinds.end())) {
      best = i;
      best_kinds = std::move(k);
    }
  }
  return best;
}

std::optional<std::string_view> strip_base_path(std::string_view path, std::string_view base) {
  if (base.empty()) return path;
  if (!path.starts_with(base)) return std::nullopt;
  std::string_view rest = path.substr(base.size());
  if (rest.empty()) return std::string_view("/");
  if (rest.front() != '/') return std::nullopt;
  return rest;
}

}  // namespace knext
