#include <doctest/doctest.h>
#include <fmt/format.h>

#include <boost/json.hpp>

#include <algorithm>
#include <regex>
#include <sstream>
#include <string>

#include "probes/admin/admin_routes.hpp"

using knext::HttpRequestHead;
using knext::LaunchState;
using knext::WarmPathStatus;
using knext::WarmState;

namespace {

HttpRequestHead get(std::string target) {
  HttpRequestHead head;
  head.method = "GET";
  head.target = std::move(target);
  head.version = "HTTP/1.1";
  return head;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("/healthz is 200 only while the child runs") {
  LaunchState state;
  auto down = knext::admin_route(get("/healthz"), state);
  CHECK(down.status == 503);
  state.child_running = true;
  auto up = knext::admin_route(get("/healthz"), state);
  CHECK(up.status == 200);
  CHECK(up.body == "ok\n");
  CHECK(up.content_type.rfind("text/plain", 0) == 0);
}

TEST_CASE("/readyz is 200 only after the gate opened") {
  LaunchState state;
  state.child_running = true;
  CHECK(knext::admin_route(get("/readyz"), state).status == 503);
  state.gate_open = true;
  CHECK(knext::admin_route(get("/readyz"), state).status == 200);
}

TEST_CASE("unknown paths are 404, including near misses") {
  LaunchState state;
  state.child_running = true;
  state.gate_open = true;
  for (const char* path : {"/", "/healthz/", "/HEALTHZ", "/metricsx", "/startup.json", "*"}) {
    INFO(path);
    CHECK(knext::admin_route(get(path), state).status == 404);
  }
}

TEST_CASE("/metrics is Prometheus text 0.0.4 with every family, escaped labels, one sample each") {
  knext::Timeline timeline;
  timeline.mark("config-parsed");
  timeline.mark("child-spawned");
  timeline.mark("child-spawned");  // a restart: the last one is exported
  LaunchState state;
  state.timeline = &timeline;
  state.gate_mode = "handoff";
  state.child_running = true;
  state.gate_open = false;
  state.restarts = 2;
  WarmPathStatus ok;
  ok.path = "/";
  ok.state = WarmState::kOk;
  ok.last_status = 200;
  ok.attempts = 1;
  ok.done_ms = 412.5;
  WarmPathStatus odd;
  odd.path = "/q\"x\\y\nz";
  odd.state = WarmState::kFailed;
  odd.last_status = 500;
  odd.attempts = 3;
  state.warm_paths = {ok, odd};

  auto reply = knext::admin_route(get("/metrics"), state);
  CHECK(reply.status == 200);
  CHECK(reply.content_type == "text/plain; version=0.0.4; charset=utf-8");
  const std::string& m = reply.body;
  REQUIRE(!m.empty());
  CHECK(m.back() == '\n');

  for (const char* family : {"knext_phase_ms", "knext_warm_path_ok", "knext_warm_path_status",
                             "knext_warm_path_attempts", "knext_warm_path_ms",
                             "knext_restarts_total", "knext_gate_open", "knext_child_running"}) {
    INFO(family);
    CHECK(m.find(std::string("# HELP ") + family + " ") != std::string::npos);
    CHECK(m.find(std::string("# TYPE ") + family + " ") != std::string::npos);
  }
  CHECK(has_line(m, "# TYPE knext_restarts_total counter"));
  CHECK(has_line(m, "# TYPE knext_gate_open gauge"));

  CHECK(has_line(
      m, fmt::format("knext_phase_ms{{phase=\"config-parsed\"}} {:.3f}", timeline.phases()[0].ms)));
  CHECK(has_line(
      m, fmt::format("knext_phase_ms{{phase=\"child-spawned\"}} {:.3f}", timeline.phases()[2].ms)));
  CHECK(has_line(m, "knext_warm_path_ok{path=\"/\"} 1"));
  CHECK(has_line(m, "knext_warm_path_status{path=\"/\"} 200"));
  CHECK(has_line(m, "knext_warm_path_attempts{path=\"/\"} 1"));
  CHECK(has_line(m, "knext_warm_path_ms{path=\"/\"} 412.500"));
  CHECK(has_line(m, "knext_warm_path_ok{path=\"/q\\\"x\\\\y\\nz\"} 0"));
  CHECK(has_line(m, "knext_warm_path_status{path=\"/q\\\"x\\\\y\\nz\"} 500"));
  CHECK(has_line(m, "knext_warm_path_attempts{path=\"/q\\\"x\\\\y\\nz\"} 3"));
  CHECK(has_line(m, "knext_restarts_total 2"));
  CHECK(has_line(m, "knext_gate_open 0"));
  CHECK(has_line(m, "knext_child_running 1"));
  CHECK(has_line(m, "knext_compile_cache_entries 0"));
  CHECK(has_line(m, "knext_compile_cache_bytes 0"));

  // Every line is a comment or `name{label="value"} number` / `name number`, and no series
  // appears twice (Prometheus rejects a scrape with duplicates).
  std::regex sample_re(R"re(([a-z_]+)(\{[a-z_]+="([^"\\]|\\.)*"\})? -?[0-9]+(\.[0-9]+)?)re");
  std::vector<std::string> series;
  for (const auto& line : lines_of(m)) {
    INFO(line);
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    CHECK(std::regex_match(line, sample_re));
    std::string key = line.substr(0, line.rfind(' '));
    CHECK(std::find(series.begin(), series.end(), key) == series.end());
    series.push_back(key);
  }
  CHECK(series.size() == 2 + 9 * 2 + 7);  // phases, 9 families per path, 7 scalars
}

TEST_CASE("/metrics without a timeline or warm paths still has every family") {
  LaunchState state;
  auto m = knext::metrics_text(state);
  CHECK(has_line(m, "# TYPE knext_phase_ms gauge"));
  CHECK(has_line(m, "# TYPE knext_warm_path_ok gauge"));
  CHECK(has_line(m, "knext_restarts_total 0"));
  CHECK(has_line(m, "knext_child_running 0"));
  CHECK(m.find("knext_phase_ms{") == std::string::npos);
}

TEST_CASE("prometheus label values escape backslash, quote and newline only") {
  CHECK(knext::prometheus_label_escape("a\\b\"c\nd\te") == "a\\\\b\\\"c\\nd\te");
}

TEST_CASE("/startup is the timeline and warm-up results as JSON") {
  knext::Timeline timeline;
  timeline.mark("config-parsed");
  timeline.mark("gate-open");
  LaunchState state;
  state.timeline = &timeline;
  state.gate_mode = "handoff";
  state.child_running = true;
  state.gate_open = true;
  state.restarts = 0;
  WarmPathStatus home;
  home.path = "/";
  home.state = WarmState::kOk;
  home.last_status = 200;
  home.attempts = 1;
  home.done_ms = 12.25;
  WarmPathStatus slow;
  slow.path = "/a\"b";
  slow.state = WarmState::kPending;
  slow.attempts = 2;
  slow.last_error = "Couldn't connect to server";
  state.warm_paths = {home, slow};

  auto reply = knext::admin_route(get("/startup"), state);
  CHECK(reply.status == 200);
  CHECK(reply.content_type == "application/json");
  std::string expected = fmt::format(
      R"({{"gate":"handoff","gate_open":true,"child_running":true,"restarts":0,)"
      R"("phases":[{{"name":"config-parsed","ms":{:.3f}}},{{"name":"gate-open","ms":{:.3f}}}],)"
      R"("warm_paths":[{{"path":"/","state":"ok","status":200,"attempts":1,"ms":12.250,)"
      R"("background":false,"first_latency_ms":0.000,"last_latency_ms":0.000,"result":"",)"
      R"("holds_gate":false}},)"
      R"({{"path":"/a\"b","state":"pending","status":0,"attempts":2,"ms":0.000,)"
      R"("background":false,"first_latency_ms":0.000,"last_latency_ms":0.000,"result":"",)"
      R"("holds_gate":true,"error":"Couldn't connect to server"}}],)"
      R"("background":{{"state":"off","routes":0,"warmed":0,"reason":"","started_ms":0.000,)"
      R"("done_ms":0.000}}}})"
      "\n",
      timeline.phases()[0].ms, timeline.phases()[1].ms);
  CHECK(reply.body == expected);
}

TEST_CASE("/startup with nothing yet is still valid JSON") {
  LaunchState state;
  CHECK(knext::startup_json(state) ==
        R"({"gate":"","gate_open":false,"child_running":false,"restarts":0,"phases":[],)"
        R"("warm_paths":[],"background":{"state":"off","routes":0,"warmed":0,"reason":"",)"
        R"("started_ms":0.000,"done_ms":0.000}})"
        "\n");
}

TEST_CASE("/startup stays valid JSON whatever the strings hold") {
  LaunchState state;
  state.gate_mode = "handoff";
  WarmPathStatus w;
  w.path = "/caf\xc3\xa9?q=\"x\"";
  w.last_error = std::string("line 1\nline 2\t\\ \x01 \x1f \"quoted\"");
  w.done_ms = 12.25;
  state.warm_paths = {w};
  state.background.reason = "a\rb";
  boost::json::error_code ec;
  auto doc = boost::json::parse(knext::startup_json(state), ec);
  REQUIRE_MESSAGE(!ec, knext::startup_json(state));
  const auto& path = doc.at("warm_paths").at(0);
  CHECK(path.at("path").as_string() == w.path);
  CHECK(path.at("error").as_string() == w.last_error);
  CHECK(path.at("ms").as_double() == 12.25);
  CHECK(doc.at("background").at("reason").as_string() == "a\rb");
}

TEST_CASE("warm state names") {
  CHECK(knext::warm_state_name(WarmState::kPending) == "pending");
  CHECK(knext::warm_state_name(WarmState::kWarming) == "warming");
  CHECK(knext::warm_state_name(WarmState::kOk) == "ok");
  CHECK(knext::warm_state_name(WarmState::kFailed) == "failed");
}
