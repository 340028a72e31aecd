#include "probes/admin/admin_routes.hpp"

#include <fmt/format.h>

#include <utility>
#include <vector>

#include "common/log.hpp"

namespace knext {
namespace {

constexpr std::string_view kText = "text/plain; charset=utf-8";
constexpr std::string_view kPrometheus = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kJson = "application/json";

// One sample per label value (a repeated phase, e.g. after a restart, or a path listed twice):
// the last entry wins, in the order of first appearance. Prometheus rejects duplicate series.
template <class T, class Key>
std::vector<const T*> last_per_key(const std::vector<T>& items, Key key) {
  std::vector<const T*> out;
  for (const T& item : items) {
    bool replaced = false;
    for (const T*& seen : out) {
      if (key(*seen) == key(item)) {
        seen = &item;
        replaced = true;
        break;
      }
    }
    if (!replaced) out.push_back(&item);
  }
  return out;
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

template <class Value>
void sample(std::string& out, std::string_view name, std::string_view label,
            std::string_view label_value, Value value) {
  out +=
      fmt::format("{}{{{}=\"{}\"}} {}\n", name, label, prometheus_label_escape(label_value), value);
}

std::string ms(double value) {
  return fmt::format("{:.3f}", value);
}

HttpReply reply(int status, std::string_view type, std::string body) {
  return HttpReply{status, std::string(type), std::move(body)};
}

}  // namespace

std::string_view warm_state_name(WarmState state) {
  switch (state) {
    case WarmState::kPending:
      return "pending";
    case WarmState::kWarming:
      return "warming";
    case WarmState::kOk:
      return "ok";
    case WarmState::kFailed:
      return "failed";
  }
  return "pending";
}

std::string prometheus_label_escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string metrics_text(const LaunchState& state) {
  std::string out;
  family(out, "knext_phase_ms", "gauge",
         "Milliseconds from the launcher's exec to each start-up phase.");
  if (state.timeline != nullptr) {
    auto phases =
        last_per_key(state.timeline->phases(),
                     [](const Timeline::Phase& p) -> const std::string& { return p.name; });
    for (const auto* p : phases) sample(out, "knext_phase_ms", "phase", p->name, ms(p->ms));
  }

  auto paths = last_per_key(state.warm_paths,
                            [](const WarmPathStatus& w) -> const std::string& { return w.path; });
  family(out, "knext_warm_path_ok", "gauge",
         "1 when the warm-up request for the path answered 2xx/3xx, else 0.");
  for (const auto* w : paths) {
    sample(out, "knext_warm_path_ok", "path", w->path, w->state == WarmState::kOk ? 1 : 0);
  }
  family(out, "knext_warm_path_status", "gauge",
         "HTTP status of the last warm-up request for the path (0: none yet).");
  for (const auto* w : paths)
    sample(out, "knext_warm_path_status", "path", w->path, w->last_status);
  family(out, "knext_warm_path_attempts", "gauge", "Warm-up requests sent for the path.");
  for (const auto* w : paths) sample(out, "knext_warm_path_attempts", "path", w->path, w->attempts);
  family(out, "knext_warm_path_ms", "gauge",
         "Milliseconds from the launcher's exec until the path was warm or given up (0: pending).");
  for (const auto* w : paths) sample(out, "knext_warm_path_ms", "path", w->path, ms(w->done_ms));
  family(out, "knext_warm_path_first_latency_ms", "gauge",
         "Latency of the path's first 2xx/3xx warm-up answer (0: none yet).");
  for (const auto* w : paths) {
    sample(out, "knext_warm_path_first_latency_ms", "path", w->path, ms(w->first_ms));
  }
  family(out, "knext_warm_path_last_latency_ms", "gauge",
         "Latency of the path's latest 2xx/3xx warm-up answer (0: none yet).");
  for (const auto* w : paths) {
    sample(out, "knext_warm_path_last_latency_ms", "path", w->path, ms(w->last_ms));
  }
  family(out, "knext_warm_path_converged", "gauge",
         "1 when the path's repeats stopped because latency converged, else 0.");
  for (const auto* w : paths) {
    sample(out, "knext_warm_path_converged", "path", w->path, w->result == "converged" ? 1 : 0);
  }
  family(out, "knext_warm_path_capped", "gauge",
         "1 when the path's repeats stopped at --warm-repeat, else 0.");
  for (const auto* w : paths) {
    sample(out, "knext_warm_path_capped", "path", w->path, w->result == "capped" ? 1 : 0);
  }
  family(out, "knext_warm_path_background", "gauge",
         "1 for a path warmed after the gate opened (--warm-path auto), 0 for a critical one.");
  for (const auto* w : paths) {
    sample(out, "knext_warm_path_background", "path", w->path, w->background ? 1 : 0);
  }
  family(out, "knext_background_warm_done", "gauge",
         "1 once background warming finished (or is off), else 0.");
  out += fmt::format("knext_background_warm_done {}\n",
                     state.background.state == "done" || state.background.state == "off" ? 1 : 0);
  family(out, "knext_background_warm_routes", "gauge",
         "Routes background warming has finished so far.");
  out += fmt::format("knext_background_warm_routes {}\n", state.background.warmed);

  family(out, "knext_compile_cache_entries", "gauge",
         "Files in node's compile cache directory after the last flush.");
  out += fmt::format("knext_compile_cache_entries {}\n", state.compile_cache_entries);
  family(out, "knext_compile_cache_bytes", "gauge",
         "Bytes in node's compile cache directory after the last flush.");
  out += fmt::format("knext_compile_cache_bytes {}\n", state.compile_cache_bytes);

  family(out, "knext_restarts_total", "counter", "Times the child was restarted.");
  out += fmt::format("knext_restarts_total {}\n", state.restarts);
  family(out, "knext_gate_open", "gauge", "1 once the gate opened (the app is ready), else 0.");
  out += fmt::format("knext_gate_open {}\n", state.gate_open ? 1 : 0);
  family(out, "knext_child_running", "gauge", "1 while the child process runs, else 0.");
  out += fmt::format("knext_child_running {}\n", state.child_running ? 1 : 0);
  return out;
}

// Strings are escaped by Boost.JSON; numbers keep their fixed decimals ("ms":12.250), which
// Boost.JSON's serializer would write as 1.225E1.
std::string startup_json(const LaunchState& state) {
  using log::json_string;
  std::string out = fmt::format(R"({{"gate":{},"gate_open":{},"child_running":{},"restarts":{})",
                                json_string(state.gate_mode), state.gate_open, state.child_running,
                                state.restarts);
  out += R"(,"phases":[)";
  if (state.timeline != nullptr) {
    bool first = true;
    for (const auto& p : state.timeline->phases()) {
      if (!std::exchange(first, false)) out += ',';
      out += fmt::format(R"({{"name":{},"ms":{}}})", json_string(p.name), ms(p.ms));
    }
  }
  out += R"(],"warm_paths":[)";
  bool first = true;
  for (const auto& w : state.warm_paths) {
    if (!std::exchange(first, false)) out += ',';
    out += fmt::format(R"({{"path":{},"state":"{}","status":{},"attempts":{},"ms":{})",
                       json_string(w.path), warm_state_name(w.state), w.last_status, w.attempts,
                       ms(w.done_ms));
    out += fmt::format(
        R"(,"background":{},"first_latency_ms":{},"last_latency_ms":{},"result":{},"holds_gate":{})",
        w.background, ms(w.first_ms), ms(w.last_ms), json_string(w.result),
        w.holds_gate && !w.background && w.state != WarmState::kFailed &&
            w.state != WarmState::kOk);
    if (!w.last_error.empty()) out += fmt::format(R"(,"error":{})", json_string(w.last_error));
    out += '}';
  }
  const auto& bg = state.background;
  out += fmt::format(
      R"(],"background":{{"state":{},"routes":{},"warmed":{},"reason":{},"started_ms":{},"done_ms":{}}})",
      json_string(bg.state), bg.total, bg.warmed, json_string(bg.reason), ms(bg.started_ms),
      ms(bg.done_ms));
  out += "}\n";
  return out;
}

HttpReply admin_route(const HttpRequestHead& request, const LaunchState& state) {
  const std::string& path = request.target;
  if (path == "/healthz") {
    return state.child_running ? reply(200, kText, "ok\n")
                               : reply(503, kText, "child not running\n");
  }
  if (path == "/readyz") {
    return state.gate_open ? reply(200, kText, "ready\n") : reply(503, kText, "not ready\n");
  }
  if (path == "/metrics") return reply(200, kPrometheus, metrics_text(state));
  if (path == "/startup") return reply(200, kJson, startup_json(state));
  return reply(404, kText, "not found; try /healthz /readyz /metrics /startup\n");
}

}  // namespace knext
