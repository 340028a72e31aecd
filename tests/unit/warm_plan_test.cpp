#include <doctest/doctest.h>

#include "probes/warm/warm_plan.hpp"
#include "probes/warm/warm_record.hpp"

using knext::plan_warm_paths;
using knext::WarmPlanInput;
using knext::WarmRecord;
using Paths = std::vector<std::string>;

TEST_CASE("warm plan: explicit paths are critical; no background without auto") {
  WarmPlanInput in;
  in.explicit_paths = {"/dynamic", "/slow", "/dynamic"};
  in.discovered = {"/", "/dynamic", "/list"};
  auto plan = plan_warm_paths(in, std::nullopt);
  CHECK(plan.critical == Paths{"/dynamic", "/slow"});
  CHECK(plan.background.empty());
  CHECK(plan_warm_paths({}, std::nullopt).critical == Paths{"/"});
}

TEST_CASE("warm plan, auto: / and the recorded critical paths first, the rest in the background") {
  WarmPlanInput in;
  in.auto_mode = true;
  in.discovered = {"/", "/admin/users", "/dynamic", "/list", "/slow"};
  in.skip = {"/admin/**"};
  WarmRecord record;
  record.paths = {{"/list", 40, 3, true}, {"/slow", 300, 2, false}};
  auto plan = plan_warm_paths(in, record);
  CHECK(plan.critical == Paths{"/", "/list"});
  CHECK(plan.background == Paths{"/dynamic", "/slow"});
  auto no_record = plan_warm_paths(in, std::nullopt);
  CHECK(no_record.critical == Paths{"/"});
  CHECK(no_record.background == Paths{"/dynamic", "/list", "/slow"});
}

TEST_CASE("warm plan, --prewarm bake: every route before the gate, skips still apply") {
  WarmPlanInput in;
  in.auto_mode = true;
  in.bake = true;
  in.discovered = {"/", "/admin", "/dynamic"};
  in.skip = {"/admin"};
  auto plan = plan_warm_paths(in, std::nullopt);
  CHECK(plan.critical == Paths{"/", "/dynamic"});
  CHECK(plan.background.empty());
}

TEST_CASE("warm plan, --warm-gate=first: only the first critical path holds the gate") {
  WarmPlanInput in;
  in.explicit_paths = {"/slow", "/dynamic", "/list"};
  in.hold_first = true;
  auto plan = plan_warm_paths(in, std::nullopt);
  CHECK(plan.critical == Paths{"/slow"});
  CHECK(plan.deferred == Paths{"/dynamic", "/list"});
  CHECK(plan.background.empty());

  // auto: the recorded critical paths are deferred, and never warmed again as background routes.
  WarmPlanInput automatic;
  automatic.auto_mode = true;
  automatic.hold_first = true;
  automatic.discovered = {"/", "/dynamic", "/list", "/slow"};
  WarmRecord record;
  record.paths = {{"/list", 40, 3, true}};
  auto from_record = plan_warm_paths(automatic, record);
  CHECK(from_record.critical == Paths{"/"});
  CHECK(from_record.deferred == Paths{"/list"});
  CHECK(from_record.background == Paths{"/dynamic", "/slow"});

  // One path, or --prewarm: nothing is deferred.
  in.explicit_paths = {"/slow"};
  CHECK(plan_warm_paths(in, std::nullopt).deferred.empty());
  automatic.bake = true;
  auto baked = plan_warm_paths(automatic, record);
  CHECK(baked.critical == Paths{"/", "/list", "/dynamic", "/slow"});
  CHECK(baked.deferred.empty());
}

TEST_CASE("warm record: round-trips; malformed records are errors naming the field") {
  WarmRecord record;
  record.build_id = "abc_123";
  record.paths = {{"/dynamic", 12.5, 4, true}, {"/slow", 305, 2, false}};
  record.routes = {"/", "/dynamic", "/slow"};
  auto back = knext::parse_warm_record(knext::format_warm_record(record));
  REQUIRE(back.ok());
  CHECK(back->build_id == "abc_123");
  REQUIRE(back->paths.size() == 2);
  CHECK(back->find("/dynamic")->steady_ms == doctest::Approx(12.5));
  CHECK(back->find("/dynamic")->repeats == 4);
  CHECK(back->find("/dynamic")->critical);
  CHECK_FALSE(back->find("/slow")->critical);
  CHECK(back->find("/nope") == nullptr);
  CHECK(back->routes == Paths{"/", "/dynamic", "/slow"});

  CHECK_FALSE(knext::parse_warm_record("not json").ok());
  CHECK_FALSE(
      knext::parse_warm_record(R"({"knext_warm_record":2,"build_id":"a","paths":[]})").ok());
  auto bad_path = knext::parse_warm_record(
      R"({"knext_warm_record":1,"build_id":"a","paths":[{"path":"x","steady_ms":1}]})");
  REQUIRE_FALSE(bad_path.ok());
  CHECK(bad_path.error().message.find("path") != std::string::npos);
  auto bad_steady = knext::parse_warm_record(
      R"({"knext_warm_record":1,"build_id":"a","paths":[{"path":"/x","steady_ms":"1"}]})");
  REQUIRE_FALSE(bad_steady.ok());
  CHECK(bad_steady.error().message.find("steady_ms of /x") != std::string::npos);
}

TEST_CASE("warm plan, learned from traffic: the most requested path first, the rest lead") {
  WarmPlanInput in;
  in.auto_mode = true;
  in.discovered = {"/", "/api/checksum", "/dynamic", "/list", "/posts/hello"};
  in.learned = {"/posts/hello", "/list", "/posts/other", "/"};
  auto plan = plan_warm_paths(in, std::nullopt);
  // Premise: without the traffic / would be the only critical path.
  WarmPlanInput untaught = in;
  untaught.learned.clear();
  REQUIRE(plan_warm_paths(untaught, std::nullopt).critical == Paths{"/"});
  CHECK(plan.critical == Paths{"/posts/hello", "/"});
  // Learned in traffic order (a dynamic route's recorded path included), then the rest.
  CHECK(plan.background == Paths{"/list", "/posts/other", "/api/checksum", "/dynamic"});

  in.hold_first = true;
  auto first = plan_warm_paths(in, std::nullopt);
  CHECK(first.critical == Paths{"/posts/hello"});
  CHECK(first.deferred == Paths{"/"});
}

TEST_CASE("warm plan, learned: a hand-given --warm-path, --warm-skip and --prewarm win") {
  WarmPlanInput in;
  in.auto_mode = true;
  in.explicit_paths = {"/slow"};
  in.discovered = {"/", "/list", "/posts/hello"};
  in.learned = {"/posts/hello", "/list"};
  auto plan = plan_warm_paths(in, std::nullopt);
  CHECK(plan.critical == Paths{"/slow"});
  CHECK(plan.background == Paths{"/posts/hello", "/list", "/"});

  WarmPlanInput skipped;
  skipped.auto_mode = true;
  skipped.learned = {"/posts/hello", "/list"};
  skipped.skip = {"/posts/*"};
  CHECK(plan_warm_paths(skipped, std::nullopt).critical == Paths{"/list", "/"});

  WarmPlanInput bake;
  bake.auto_mode = true;
  bake.bake = true;
  bake.discovered = {"/", "/list"};
  bake.learned = {"/posts/hello"};
  CHECK(plan_warm_paths(bake, std::nullopt).critical == Paths{"/", "/list"});

  WarmPlanInput not_auto;
  not_auto.learned = {"/posts/hello"};
  CHECK(plan_warm_paths(not_auto, std::nullopt).critical == Paths{"/"});
}
