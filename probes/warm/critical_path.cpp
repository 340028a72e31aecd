#include "probes/warm/critical_path.hpp"

#include <algorithm>
#include <tuple>

namespace knext {
namespace {

bool is_page(const DiscoveredRoute& r) {
  return r.kind != RouteKind::kRouteHandler;
}

size_t segments(const std::string& route) {
  return static_cast<size_t>(std::count(route.begin(), route.end(), '/'));
}

// Fewer segments first: the route a visitor reaches soonest from the top.
bool likelier(const DiscoveredRoute& a, const DiscoveredRoute& b) {
  return std::forward_as_tuple(segments(a.route), a.route.size(), a.route) <
         std::forward_as_tuple(segments(b.route), b.route.size(), b.route);
}

}  // namespace

std::vector<std::string> auto_critical_paths(const RouteDiscovery& found) {
  const DiscoveredRoute* root = nullptr;
  const DiscoveredRoute* dynamic = nullptr;
  const DiscoveredRoute* any_page = nullptr;
  for (const auto& r : found.routes) {
    if (!is_page(r)) continue;
    if (r.route == "/") root = &r;
    if (!any_page || likelier(r, *any_page)) any_page = &r;
    if (r.per_request && (!dynamic || likelier(r, *dynamic))) dynamic = &r;
  }
  if (root && (root->per_request || !dynamic)) return {root->path};
  if (dynamic) {
    if (root) return {root->path, dynamic->path};
    return {dynamic->path};
  }
  if (any_page) return {any_page->path};
  return {public_path(found.urls, "/")};
}

}  // namespace knext
