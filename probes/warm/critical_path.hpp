#pragma once
// The critical paths of `--warm-path auto` when no --warm-path is given: what the first
// request held since the spawn most likely needs loaded, in the app's own URL space.
//
// The first warm request pays Next's own start (the router server, the render stack); what
// else it loads depends on the route. A prerendered `/` (App Router static, Pages Router HTML)
// is served from its copy and loads none of the renderer that dynamic routes use, so on such a
// build the page most likely rendered per request is a critical path too: after `/`, which is
// cheap and lets a request held since the spawn in soonest (with the default
// --warm-gate=first it alone holds the gate and the page is warmed right after it opens).
// README "Adaptive warm-up", "The auto critical path", has the measurements behind the order.
#include <string>
#include <vector>

#include "probes/warm/route_discovery.hpp"

namespace knext {

// In order, each once, as the worker requests them:
// - `/` (the basePath with one) when the build has it;
// - then, when `/` is prerendered or missing, the per-request page with the fewest segments
//   (then the shortest, then the first by byte order);
// - a build with neither: its first page, else `/` as it would be requested.
std::vector<std::string> auto_critical_paths(const RouteDiscovery& found);

}  // namespace knext
