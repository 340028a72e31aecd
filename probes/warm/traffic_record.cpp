#include "probes/warm/traffic_record.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>
#include <optional>

#include "probes/warm/route_match.hpp"

namespace knext {
namespace {

constexpr std::string_view kHeader = "# knext-traffic v1";
constexpr std::string_view kBuildPrefix = "# build-id ";
constexpr uint64_t kMaxCount = 1'000'000'000'000ULL;  // saturates: a record never overflows

uint64_t add_counts(uint64_t a, uint64_t b) {
  return std::min(kMaxCount, std::min(a, kMaxCount) + std::min(b, kMaxCount));
}

bool valid_build_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

bool valid_route(std::string_view route) {
  if (route.empty() || route.front() != '/' || route.size() > 1024) return false;
  return std::all_of(route.begin(), route.end(),
                     [](char c) { return c > ' ' && c <= '~' && c != '\t'; });
}

std::optional<uint64_t> parse_count(std::string_view text) {
  if (text.empty() || text.size() > 13) return std::nullopt;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n == 0 || n > kMaxCount) {
    return std::nullopt;
  }
  return n;
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string_view::npos ? tab : tab - start));
    if (tab == std::string_view::npos) return out;
    start = tab + 1;
  }
}

std::string_view next_line(std::string_view& text) {
  size_t nl = text.find('\n');
  std::string_view line = text.substr(0, nl);
  text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  return line;
}

Error bad(const std::string& what) {
  return Error{"traffic record: " + what, EINVAL};
}

std::vector<TrafficRoute> by_count(std::vector<TrafficRoute> routes) {
  std::stable_sort(routes.begin(), routes.end(), [](const TrafficRoute& a, const TrafficRoute& b) {
    return a.count != b.count ? a.count > b.count : a.route < b.route;
  });
  return routes;
}

}  // namespace

bool valid_traffic_path(std::string_view path) {
  if (path.empty() || path.front() != '/' || path.size() > kMaxTrafficPath) return false;
  return std::all_of(path.begin(), path.end(),
                     [](char c) { return c > ' ' && c <= '~' && c != '"' && c != '\\'; });
}

TrafficRecord tally_traffic(const std::vector<std::pair<std::string, uint64_t>>& paths,
                            const std::vector<std::string>& patterns, std::string_view base_path,
                            std::string build_id) {
  std::map<size_t, TrafficRoute> routes;
  for (const auto& [path, count] : paths) {
    if (count == 0 || !valid_traffic_path(path)) continue;
    auto inside = strip_base_path(path, base_path);
    if (!inside) continue;
    auto index = match_route(patterns, *inside);
    if (!index || !valid_route(patterns[*index])) continue;
    TrafficRoute& r = routes[*index];
    r.route = patterns[*index];
    r.count = add_counts(r.count, count);
    if (count > r.top_count || (count == r.top_count && path < r.top_path)) {
      r.top_path = path;
      r.top_count = std::min(count, kMaxCount);
    }
  }
  TrafficRecord out;
  out.build_id = std::move(build_id);
  for (auto& [index, route] : routes) out.routes.push_back(std::move(route));
  out.routes = by_count(std::move(out.routes));
  return out;
}

void merge_traffic(TrafficRecord& into, const TrafficRecord& more) {
  for (const auto& m : more.routes) {
    auto it = std::find_if(into.routes.begin(), into.routes.end(),
                           [&](const TrafficRoute& r) { return r.route == m.route; });
    if (it == into.routes.end()) {
      into.routes.push_back(m);
      continue;
    }
    it->count = add_counts(it->count, m.count);
    if (it->top_path == m.top_path) {
      it->top_count = add_counts(it->top_count, m.top_count);
    } else if (m.top_count > it->top_count) {
      it->top_path = m.top_path;
      it->top_count = m.top_count;
    }
  }
  into.routes = by_count(std::move(into.routes));
}

std::string format_traffic_record(const TrafficRecord& record) {
  std::string out =
      std::string(kHeader) + "\n" + std::string(kBuildPrefix) + record.build_id + "\n";
  for (const auto& r : by_count(record.routes)) {
    std::string line = std::to_string(r.count) + "\t" + r.route + "\t" +
                       std::to_string(r.top_count) + "\t" + r.top_path + "\n";
    if (out.size() + line.size() > kMaxTrafficRecord) break;
    out += line;
  }
  return out;
}

Expected<TrafficRecord> parse_traffic_record(std::string_view text) {
  if (text.size() > kMaxTrafficRecord) return bad("over 64 KiB");
  if (next_line(text) != kHeader) return bad("no '# knext-traffic v1' header");
  std::string_view build = next_line(text);
  if (!build.starts_with(kBuildPrefix) || !valid_build_id(build.substr(kBuildPrefix.size()))) {
    return bad("no valid '# build-id' line");
  }
  TrafficRecord record;
  record.build_id = std::string(build.substr(kBuildPrefix.size()));
  int line_no = 2;
  while (!text.empty()) {
    std::string_view line = next_line(text);
    ++line_no;
    auto fields = split_tabs(line);
    std::string where = "line " + std::to_string(line_no);
    if (fields.size() != 4) return bad(where + ": not 4 tab-separated fields");
    auto count = parse_count(fields[0]);
    auto top_count = parse_count(fields[2]);
    if (!count || !top_count || *top_count > *count) return bad(where + ": bad count");
    if (!valid_route(fields[1])) return bad(where + ": bad route");
    if (!valid_traffic_path(fields[3])) return bad(where + ": bad path");
    bool again = std::any_of(record.routes.begin(), record.routes.end(),
                             [&](const TrafficRoute& r) { return r.route == fields[1]; });
    if (again) return bad(where + ": route listed twice");
    record.routes.push_back({std::string(fields[1]), *count, std::string(fields[3]), *top_count});
  }
  record.routes = by_count(std::move(record.routes));
  return record;
}

std::vector<std::string> learned_paths(const TrafficRecord& record) {
  std::vector<std::string> out;
  for (const auto& r : by_count(record.routes)) {
    if (std::find(out.begin(), out.end(), r.top_path) == out.end()) out.push_back(r.top_path);
  }
  return out;
}

}  // namespace knext
