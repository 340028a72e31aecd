// The traffic record read back from the cache volume (probes/warm/traffic_record.hpp): anyone in
// the volume's group may have written it. What parses must stay in bounds and survive a round
// trip unchanged; tally and merge must keep to the same bounds.
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "probes/warm/route_match.hpp"
#include "probes/warm/traffic_record.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto record = knext::parse_traffic_record(text);
  if (!record) return 0;
  FUZZ_CHECK(text.size() <= knext::kMaxTrafficRecord);
  std::vector<std::string> patterns;
  for (const auto& r : record->routes) {
    FUZZ_CHECK(knext::valid_traffic_path(r.top_path));
    FUZZ_CHECK(r.top_count >= 1 && r.top_count <= r.count);
    patterns.push_back(r.route);
  }
  std::string again = knext::format_traffic_record(*record);
  FUZZ_CHECK(again.size() <= knext::kMaxTrafficRecord);
  auto reparsed = knext::parse_traffic_record(again);
  FUZZ_CHECK(reparsed.ok());
  FUZZ_CHECK(reparsed->routes.size() == record->routes.size());
  knext::merge_traffic(*record, *reparsed);
  FUZZ_CHECK(knext::format_traffic_record(*record).size() <= knext::kMaxTrafficRecord);
  std::vector<std::pair<std::string, uint64_t>> paths;
  for (const auto& r : reparsed->routes) paths.emplace_back(r.top_path, r.count);
  auto tallied = knext::tally_traffic(paths, patterns, "", "b1");
  FUZZ_CHECK(tallied.routes.size() <= patterns.size());
  return 0;
}
