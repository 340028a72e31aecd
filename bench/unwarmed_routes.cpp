#include "bench/unwarmed_routes.hpp"

#include <algorithm>

#include "probes/warm/route_discovery.hpp"

namespace knext::bench {
namespace {

constexpr size_t kMaxProbed = 16;

int kind_order(RouteKind kind) {
  switch (kind) {
    case RouteKind::kPrerendered:
      return 0;
    case RouteKind::kAppPage:
      return 1;
    case RouteKind::kPagesPage:
      return 2;
    case RouteKind::kRouteHandler:
      return 3;
  }
  return 4;
}

}  // namespace

Expected<std::vector<std::string>> pick_unwarmed_routes(const std::string& app_dir,
                                                        const std::vector<std::string>& warm,
                                                        ServerRunRequest probe, size_t count) {
  auto found = discover_routes(app_dir);
  if (!found) return found.error();
  std::vector<DiscoveredRoute> candidates;
  for (const auto& r : found->routes) {
    if (std::find(warm.begin(), warm.end(), r.path) == warm.end()) candidates.push_back(r);
  }
  std::stable_sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
    return kind_order(a.kind) < kind_order(b.kind);
  });
  if (candidates.size() > kMaxProbed) candidates.resize(kMaxProbed);
  if (candidates.empty()) return std::vector<std::string>{};
  probe.paths.clear();
  for (const auto& r : candidates) probe.paths.push_back(r.path);
  auto probed = measure_server_run(probe);
  if (!probed) return probed.error();
  std::vector<const DiscoveredRoute*> answering;
  for (size_t i = 0; i < candidates.size() && i < probed->paths.size(); ++i) {
    long status = probed->paths[i].status;
    if (status >= 200 && status < 300) answering.push_back(&candidates[i]);
  }
  std::vector<std::string> picked;
  std::vector<bool> taken(answering.size(), false);
  for (bool first_of_kind : {true, false}) {
    int last_kind = -1;
    for (size_t i = 0; i < answering.size() && picked.size() < count; ++i) {
      int kind = kind_order(answering[i]->kind);
      if (taken[i] || (first_of_kind && kind == last_kind)) continue;
      last_kind = kind;
      taken[i] = true;
      picked.push_back(answering[i]->path);
    }
  }
  return picked;
}

}  // namespace knext::bench
