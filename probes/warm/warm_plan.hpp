#pragma once
#include <optional>
#include <string>
#include <vector>

#include "probes/warm/warm_record.hpp"

namespace knext {

// Which paths are warmed before the gate opens (critical) and which after it, in the background.
struct WarmPlan {
  std::vector<std::string> critical;
  std::vector<std::string> deferred;  // critical, but warmed right after the gate (hold_first)
  std::vector<std::string> background;
};

struct WarmPlanInput {
  std::vector<std::string> explicit_paths;  // --warm-path values other than "auto"
  bool auto_mode = false;                   // --warm-path auto (or its default for Next.js)
  bool bake = false;                        // --prewarm: every route before the flush
  std::vector<std::string> discovered;      // the build's GET routes
  std::vector<std::string> skip;            // --warm-skip globs
  bool hold_first = false;                  // --warm-gate=first: only the first holds the gate
  // The build's own critical paths (auto_critical_paths) when no --warm-path is given; empty:
  // "/" (no build to read).
  std::vector<std::string> auto_critical;
  // Learned from traffic (traffic_record.hpp), most requested route first: concrete paths.
  std::vector<std::string> learned;
};

// Critical: the explicit list if given, else the most requested learned path (auto only, not at
// --prewarm), then the auto critical paths plus the paths the record marks critical; at
// --prewarm also every discovered route. Background (auto only): the other learned paths in
// traffic order, then every other discovered route. --warm-skip removes discovered, recorded
// and learned paths, never an explicit one. With
// hold_first (never at --prewarm) every critical path after the first is deferred instead.
// The path was asked for: an explicit --warm-path, or an auto critical path without any. Only
// these decide whether warm-up failed and are the critical paths --prewarm records.
bool asked_for(const WarmPlanInput& in, const std::string& path);

WarmPlan plan_warm_paths(const WarmPlanInput& in, const std::optional<WarmRecord>& record);

}  // namespace knext
