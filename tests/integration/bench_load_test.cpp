// `knext-launch --bench --load`: the scale-from-zero load test on the fixture app.
#include <doctest/doctest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <optional>

#include "tests/integration/harness.hpp"

namespace fs = std::filesystem;
using namespace knext::test;

namespace {

const fs::path kRoot = KNEXT_SOURCE_ROOT;
const fs::path kApp = kRoot / "tests/fixtures/next-app/.next/standalone";

LaunchOptions in_app_dir() {
  LaunchOptions o;
  o.pid_namespace = false;
  o.cwd = kApp.string();
  o.env = {{"PATH", (kRoot / ".deps/node/bin").string() + ":" + std::getenv("PATH")}};
  return o;
}

// The number at `keys` (one key per level) in the report, nullopt when it is not a number.
std::optional<double> json_number(const boost::json::value& doc,
                                  std::initializer_list<const char*> keys) {
  const boost::json::value* v = &doc;
  for (const char* key : keys) {
    const auto* obj = v->if_object();
    if (obj == nullptr || (v = obj->if_contains(key)) == nullptr) return std::nullopt;
  }
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  if (v->is_double()) return v->as_double();
  return std::nullopt;
}

}  // namespace

TEST_CASE("--bench --load from zero: every request answered, none lost at SIGTERM, exit 0") {
  TempDir tmp;
  auto json_path = tmp.path() / "load.json";
  auto r = run_launcher(
      {"--bench", "--load", "2000", "--concurrency", "20", "--json", json_path.string()},
      in_app_dir(), 90s);
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 0);

  std::string json = read_file(json_path);
  INFO("json:\n" << json);
  boost::system::error_code ec;
  auto doc = boost::json::parse(json, ec);
  REQUIRE_MESSAGE(!ec, ec.message());
  REQUIRE(doc.is_object());
  auto finished = json_number(doc, {"finished"});
  auto ok = json_number(doc, {"ok"});
  auto errors = json_number(doc, {"errors"});
  auto lost = json_number(doc, {"lost"});
  auto in_flight = json_number(doc, {"in_flight_at_sigterm"});
  auto first = json_number(doc, {"time_to_first_success_ms"});
  auto exit_status = json_number(doc, {"launcher_exit"});
  for (const auto* n : {&finished, &ok, &errors, &lost, &in_flight, &first, &exit_status}) {
    REQUIRE(n->has_value());
  }
  // Every request is sent: the SIGTERM comes after the last one went out.
  CHECK(json_number(doc, {"sent"}) == 2000);
  CHECK(*finished == 2000);
  CHECK(*ok == *finished);
  CHECK(*errors == 0);
  CHECK(*lost == 0);
  CHECK(*first > 0);
  CHECK(json_number(doc, {"latency_ms", "p99"}).has_value());
  CHECK(json_number(doc, {"requests_per_s"}).has_value());
  // The tail is explained: the slowest request per connection, and where the slowest one was.
  auto slowest = json_number(doc, {"slowest_request", "ms"});
  auto max = json_number(doc, {"latency_ms", "max"});
  REQUIRE(slowest.has_value());
  REQUIRE(max.has_value());
  CHECK(*slowest == doctest::Approx(*max).epsilon(0.001));
  CHECK(json_number(doc, {"per_connection", "min_requests"}) > 0);  // no connection starved

  // The table carries the same figures.
  auto count = [](double v) { return std::to_string(static_cast<long>(v)); };
  CHECK(r.out.find(count(*finished) + " finished") != std::string::npos);
  CHECK(r.out.find(count(*in_flight) + " in flight, 0 lost") != std::string::npos);
  CHECK(r.out.find("errors") != std::string::npos);
  CHECK(r.out.find("first 2xx") != std::string::npos);
  CHECK(r.out.find("SIGTERM once the last request was sent") != std::string::npos);
  CHECK(r.out.find("slowest request") != std::string::npos);
  CHECK(r.out.find(" 2000 sent, 2000 finished") != std::string::npos);
  CHECK(r.out.find("exit status " + count(*exit_status)) != std::string::npos);
  CHECK(r.err.find("finished") != std::string::npos);  // the progress lines
}

TEST_CASE("--bench --load with a command that is not installed: one line naming it, exit 2") {
  auto r = run_launcher({"--bench", "--load", "10", "--", "no-such-node-knext"}, in_app_dir(), 10s);
  CHECK(r.exit_code == 2);
  CHECK(lines(r.err).size() == 1);
  CHECK(r.err.find("no-such-node-knext") != std::string::npos);
}
