#pragma once
// What users requested, learned from traffic and kept on the cache volume beside the compile
// cache (<cache-dir>/<app>/<build-id>/knext-traffic): per route of the build, how often it was
// requested and its most requested concrete path. Paths and counts only: the hook never reports
// a query, a header or a body. The next start warms these routes first (warm_plan.hpp).
//
// Format, text lines:
//   # knext-traffic v1
//   # build-id <id>
//   <count>\t<route pattern>\t<count of the top path>\t<top path, basePath included>
// Routes most requested first. The file is outside input: parse_traffic_record checks every
// field and bound, and anything off makes the whole record a miss.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/expected.hpp"

namespace knext {

inline constexpr std::string_view kTrafficRecordName = "knext-traffic";
inline constexpr size_t kMaxTrafficRecord = 64 * 1024;  // over that is a miss
inline constexpr size_t kMaxTrafficPath = 256;          // the hook drops longer paths

struct TrafficRoute {
  std::string route;  // the page pattern, basePath not included: "/posts/[slug]"
  uint64_t count = 0;
  std::string top_path;  // the concrete path requested most: "/posts/hello"
  uint64_t top_count = 0;
};

struct TrafficRecord {
  std::string build_id;
  std::vector<TrafficRoute> routes;  // each route once
};

// A path as the hook reports it: starts with '/', at most kMaxTrafficPath bytes of printable
// ASCII other than '"' and '\\' (so it is one field of a line and one JSON string as it is).
bool valid_traffic_path(std::string_view path);

// Maps requested paths (with their counts) onto the build's routes (patterns without basePath,
// as route_match.hpp reads them). Paths outside basePath, matching no route, or not valid are
// left out.
TrafficRecord tally_traffic(const std::vector<std::pair<std::string, uint64_t>>& paths,
                            const std::vector<std::string>& patterns, std::string_view base_path,
                            std::string build_id);

// Adds `more`'s counts to `into`, route by route (same build assumed). The top path is the one
// with the higher count; the same path's counts add.
void merge_traffic(TrafficRecord& into, const TrafficRecord& more);

// Most requested first; routes at the end are left out until the text fits kMaxTrafficRecord.
std::string format_traffic_record(const TrafficRecord& record);
// An error names what was wrong; the caller treats it as a miss.
Expected<TrafficRecord> parse_traffic_record(std::string_view text);

// The routes' top paths, most requested route first.
std::vector<std::string> learned_paths(const TrafficRecord& record);

}  // namespace knext
