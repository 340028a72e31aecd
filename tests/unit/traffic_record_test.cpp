#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "probes/warm/route_match.hpp"
#include "probes/warm/traffic_record.hpp"

using knext::format_traffic_record;
using knext::learned_paths;
using knext::match_route;
using knext::merge_traffic;
using knext::parse_traffic_record;
using knext::route_pattern_matches;
using knext::strip_base_path;
using knext::tally_traffic;
using knext::TrafficRecord;
using knext::TrafficRoute;
using Paths = std::vector<std::string>;
using Counts = std::vector<std::pair<std::string, uint64_t>>;

TEST_CASE("route match: static, [x], [...x] and [[...x]] segments") {
  CHECK(route_pattern_matches("/", "/"));
  CHECK(route_pattern_matches("/list", "/list/"));
  CHECK_FALSE(route_pattern_matches("/list", "/lists"));
  CHECK_FALSE(route_pattern_matches("/list", "/"));
  CHECK(route_pattern_matches("/posts/[slug]", "/posts/hello"));
  CHECK_FALSE(route_pattern_matches("/posts/[slug]", "/posts"));
  CHECK_FALSE(route_pattern_matches("/posts/[slug]", "/posts/a/b"));
  CHECK(route_pattern_matches("/docs/[...all]", "/docs/a/b/c"));
  CHECK(route_pattern_matches("/docs/[...all]", "/docs/a"));
  CHECK_FALSE(route_pattern_matches("/docs/[...all]", "/docs"));
  CHECK(route_pattern_matches("/shop/[[...rest]]", "/shop"));
  CHECK(route_pattern_matches("/shop/[[...rest]]", "/shop/x/y"));
  CHECK_FALSE(route_pattern_matches("/shop/[[...rest]]", "/shops"));
  CHECK(route_pattern_matches("/[a]/x/[b]", "/1/x/2"));
  CHECK_FALSE(route_pattern_matches("/[a]/x/[b]", "/1/y/2"));
}

TEST_CASE("route match: the most specific pattern wins, as in Next") {
  Paths patterns = {"/[...all]", "/posts/[slug]", "/posts/new", "/[[...opt]]", "/"};
  CHECK(match_route(patterns, "/posts/new") == 2u);
  CHECK(match_route(patterns, "/posts/hello") == 1u);
  CHECK(match_route(patterns, "/about/x") == 0u);
  CHECK(match_route(patterns, "/") == 4u);
  CHECK(match_route(Paths{"/[[...opt]]"}, "/") == 0u);
  CHECK_FALSE(match_route(Paths{"/posts/[slug]"}, "/other").has_value());
  CHECK_FALSE(match_route(Paths{}, "/").has_value());
}

TEST_CASE("route match: basePath is stripped only at a segment boundary") {
  CHECK(strip_base_path("/a", "") == "/a");
  CHECK(strip_base_path("/docs/a", "/docs") == "/a");
  CHECK(strip_base_path("/docs", "/docs") == "/");
  CHECK_FALSE(strip_base_path("/docsx/a", "/docs").has_value());
  CHECK_FALSE(strip_base_path("/a", "/docs").has_value());
}

TEST_CASE("traffic: paths map onto routes with their most requested concrete path") {
  Paths patterns = {"/", "/list", "/posts/[slug]", "/api/checksum"};
  Counts counts = {{"/posts/hello", 5},  {"/posts/other", 2}, {"/", 1},
                   {"/nothing/here", 9}, {"/list/", 3},       {"/bad\"path", 4}};
  auto record = tally_traffic(counts, patterns, "", "b1");
  REQUIRE(record.routes.size() == 3);
  CHECK(record.routes[0].route == "/posts/[slug]");
  CHECK(record.routes[0].count == 7);
  CHECK(record.routes[0].top_path == "/posts/hello");
  CHECK(record.routes[0].top_count == 5);
  CHECK(record.routes[1].route == "/list");
  CHECK(record.routes[2].route == "/");
  CHECK(learned_paths(record) == Paths{"/posts/hello", "/list/", "/"});

  auto based = tally_traffic({{"/docs/posts/a", 2}, {"/posts/b", 5}}, patterns, "/docs", "b1");
  REQUIRE(based.routes.size() == 1);
  CHECK(based.routes[0].top_path == "/docs/posts/a");  // what to GET keeps the basePath
}

TEST_CASE("traffic: a record merges counts route by route and round-trips") {
  TrafficRecord a{"b1", {{"/posts/[slug]", 7, "/posts/hello", 5}, {"/", 1, "/", 1}}};
  TrafficRecord b{"b1", {{"/posts/[slug]", 6, "/posts/other", 6}, {"/list", 3, "/list", 3}}};
  merge_traffic(a, b);
  REQUIRE(a.routes.size() == 3);
  CHECK(a.routes[0].route == "/posts/[slug]");
  CHECK(a.routes[0].count == 13);
  CHECK(a.routes[0].top_path == "/posts/other");  // 6 > 5
  TrafficRecord same{"b1", {{"/", 4, "/", 4}}};
  merge_traffic(a, same);
  CHECK(a.routes[1].route == "/");
  CHECK(a.routes[1].count == 5);
  CHECK(a.routes[1].top_count == 5);

  auto parsed = parse_traffic_record(format_traffic_record(a));
  REQUIRE(parsed.ok());
  CHECK(parsed->build_id == "b1");
  REQUIRE(parsed->routes.size() == a.routes.size());
  for (size_t i = 0; i < a.routes.size(); ++i) {
    CHECK(parsed->routes[i].route == a.routes[i].route);
    CHECK(parsed->routes[i].count == a.routes[i].count);
    CHECK(parsed->routes[i].top_path == a.routes[i].top_path);
  }
}

TEST_CASE("traffic: damaged or oversized records are errors, never partial") {
  const std::string head = "# knext-traffic v1\n# build-id b1\n";
  CHECK(parse_traffic_record(head).ok());
  CHECK(parse_traffic_record(head + "3\t/list\t3\t/list\n").ok());
  for (std::string bad : {
           std::string(""),
           std::string("# knext-traffic v2\n# build-id b1\n"),
           std::string("# knext-traffic v1\n# build-id ../x\n"),
           head + "3\t/list\t3\n",                             // a field missing
           head + "x\t/list\t3\t/list\n",                      // not a count
           head + "0\t/list\t0\t/list\n",                      // zero
           head + "3\t/list\t4\t/list\n",                      // top above the route's count
           head + "99999999999999\t/l\t1\t/l\n",               // over the cap
           head + "3\tlist\t3\t/list\n",                       // route without '/'
           head + "3\t/list\t3\t/li st\n",                     // bad path
           head + "3\t/list\t3\t/list\n2\t/list\t2\t/list\n",  // twice
           head + "3\t/list\t3\t/" + std::string(300, 'a') + "\n",
       }) {
    CHECK_MESSAGE(!parse_traffic_record(bad).ok(), bad);
  }
  CHECK_FALSE(parse_traffic_record(head + std::string(70 * 1024, '#')).ok());
}

TEST_CASE("traffic: the written record stays within 64 KiB, least requested left out") {
  TrafficRecord big{"b1", {}};
  for (int i = 0; i < 400; ++i) {
    std::string path = "/r" + std::to_string(i) + "/" + std::string(200, 'x');
    big.routes.push_back({path, static_cast<uint64_t>(i + 1), path, 1});
  }
  std::string text = format_traffic_record(big);
  CHECK(text.size() <= knext::kMaxTrafficRecord);
  auto parsed = parse_traffic_record(text);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->routes.size() < big.routes.size());
  CHECK(parsed->routes.front().count == 400);  // the most requested are kept
}
