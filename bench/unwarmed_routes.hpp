#pragma once
#include <string>
#include <vector>

#include "bench/server_run.hpp"
#include "common/expected.hpp"

namespace knext::bench {

// Routes the build lists (probes/route_discovery) that are not warm paths, for the bench's
// "first request after ready on a route nobody warmed": one of each kind first (prerendered,
// app page, pages-router page, route handler), then more, up to `count`. Only routes that
// answered 2xx in one probe start of the server (`probe`, its paths replaced) are picked: which
// methods a route handler exports is not in any manifest, so a POST-only one shows up here.
Expected<std::vector<std::string>> pick_unwarmed_routes(const std::string& app_dir,
                                                        const std::vector<std::string>& warm,
                                                        ServerRunRequest probe, size_t count = 4);

}  // namespace knext::bench
