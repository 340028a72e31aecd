#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

// What `--prewarm` learned about warming this build, kept beside the prewarm manifest in .next/
// and read by the warm-up worker at run time: each warmed path's steady latency (the convergence
// target) and how many requests it took, and the routes discovery listed.
namespace knext {

struct WarmRecordPath {
  std::string path;
  double steady_ms = 0;
  int repeats = 0;
  bool critical = false;     // warmed before the gate at run time under --warm-path auto
  double steady_cpu_ms = 0;  // node's main-thread CPU time per request at steady state; 0: none
};

struct WarmRecord {
  std::string build_id;
  std::vector<WarmRecordPath> paths;
  std::vector<std::string> routes;

  const WarmRecordPath* find(std::string_view path) const;
};

std::string warm_record_path_for(const std::string& app_dir);

std::string format_warm_record(const WarmRecord& record);
// Errors name what was wrong (not JSON, a field of the wrong type, a path not starting '/').
Expected<WarmRecord> parse_warm_record(std::string_view text);

// Reads the record of app_dir's build. nullopt without a record; an error (to log once) when it
// is unreadable, malformed or of another build.
Expected<std::optional<WarmRecord>> load_warm_record(const std::string& app_dir,
                                                     const std::string& build_id);

}  // namespace knext
