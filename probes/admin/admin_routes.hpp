#pragma once
#include <string>
#include <string_view>

#include "probes/http/http_head.hpp"
#include "probes/launch_state.hpp"

namespace knext {

// The admin endpoint's pages, from the launcher's state (read on the loop thread):
//   /healthz  200 "ok" while the child runs, else 503
//   /readyz   200 once the gate opened, else 503
//   /metrics  Prometheus text exposition format 0.0.4
//   /startup  the phase timeline and warm-up results as JSON
// Anything else is 404. The server handles methods (GET/HEAD) and malformed requests.
HttpReply admin_route(const HttpRequestHead& request, const LaunchState& state);

std::string metrics_text(const LaunchState& state);
std::string startup_json(const LaunchState& state);

// A Prometheus label value with \ " and newline escaped (the quotes are not added).
std::string prometheus_label_escape(std::string_view value);

std::string_view warm_state_name(WarmState state);  // "pending", "ok", "failed"

}  // namespace knext
