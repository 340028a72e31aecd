#include "probes/warm/warm_plan.hpp"

#include <algorithm>

#include "probes/warm/route_discovery.hpp"

namespace knext {
namespace {

bool skipped(const WarmPlanInput& in, const std::string& path) {
  return warm_skipped(in.skip, path);
}

void add_once(std::vector<std::string>& out, const std::string& path) {
  if (std::find(out.begin(), out.end(), path) == out.end()) out.push_back(path);
}

const std::vector<std::string>& default_critical(const WarmPlanInput& in) {
  static const std::vector<std::string> kRoot = {"/"};
  return in.auto_critical.empty() ? kRoot : in.auto_critical;
}

}  // namespace

bool asked_for(const WarmPlanInput& in, const std::string& path) {
  const auto& asked = in.explicit_paths.empty() ? default_critical(in) : in.explicit_paths;
  return std::find(asked.begin(), asked.end(), path) != asked.end();
}

WarmPlan plan_warm_paths(const WarmPlanInput& in, const std::optional<WarmRecord>& record) {
  WarmPlan plan;
  for (const auto& p : in.explicit_paths) add_once(plan.critical, p);
  std::vector<std::string> learned;
  if (in.auto_mode && !in.bake) {
    for (const auto& p : in.learned) {
      if (!skipped(in, p)) add_once(learned, p);
    }
  }
  if (plan.critical.empty()) {
    if (!learned.empty()) plan.critical.push_back(learned.front());
    for (const auto& p : default_critical(in)) add_once(plan.critical, p);
    if (in.auto_mode && record) {
      for (const auto& p : record->paths) {
        if (p.critical && !skipped(in, p.path)) add_once(plan.critical, p.path);
      }
    }
  }
  if (in.auto_mode) {
    auto& rest = in.bake ? plan.critical : plan.background;
    for (const auto& p : learned) {
      if (std::find(plan.critical.begin(), plan.critical.end(), p) == plan.critical.end()) {
        add_once(rest, p);
      }
    }
    for (const auto& p : in.discovered) {
      if (skipped(in, p)) continue;
      if (std::find(plan.critical.begin(), plan.critical.end(), p) != plan.critical.end()) continue;
      add_once(rest, p);
    }
  }
  if (in.hold_first && !in.bake && plan.critical.size() > 1) {
    plan.deferred.assign(plan.critical.begin() + 1, plan.critical.end());
    plan.critical.resize(1);
  }
  return plan;
}

}  // namespace knext
