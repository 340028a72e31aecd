#include "launcher/restart_policy.hpp"

#include <doctest/doctest.h>

using knext::RestartMode;
using knext::RestartPolicy;
using namespace std::chrono_literals;

namespace {
// A fake clock: the policy only compares the times it is given.
RestartPolicy::TimePoint at(std::chrono::milliseconds t) {
  return RestartPolicy::TimePoint{} + t;
}
}  // namespace

TEST_CASE("never: no exit is restarted") {
  RestartPolicy p(RestartMode::kNever, 5, 60s);
  CHECK_FALSE(p.on_exit(1, false, at(0ms)).restart);
  CHECK_FALSE(p.on_exit(137, false, at(1s)).restart);
}

TEST_CASE("on-failure: a clean exit or a requested stop is not restarted") {
  RestartPolicy p(RestartMode::kOnFailure, 5, 60s);
  auto clean = p.on_exit(0, false, at(0ms));
  CHECK_FALSE(clean.restart);
  CHECK(clean.reason.find("exited 0") != std::string::npos);
  CHECK_FALSE(p.on_exit(143, true, at(0ms)).restart);
  CHECK(p.on_exit(1, false, at(0ms)).restart);  // the refusals spent no budget
}

TEST_CASE("on-failure: backoff doubles while restarts stay in the window, then the budget ends") {
  RestartPolicy p(RestartMode::kOnFailure, 3, 60s);
  auto first = p.on_exit(1, false, at(0ms));
  auto second = p.on_exit(139, false, at(1s));
  auto third = p.on_exit(1, false, at(2s));
  REQUIRE(first.restart);
  REQUIRE(second.restart);
  REQUIRE(third.restart);
  CHECK(first.delay == RestartPolicy::kFirstBackoff);
  CHECK(second.delay == 2 * RestartPolicy::kFirstBackoff);
  CHECK(third.delay == 4 * RestartPolicy::kFirstBackoff);
  auto fourth = p.on_exit(1, false, at(3s));
  CHECK_FALSE(fourth.restart);
  CHECK(fourth.reason.find("--restart-max 3") != std::string::npos);
}

TEST_CASE("on-failure: restarts older than the window no longer count") {
  RestartPolicy p(RestartMode::kOnFailure, 2, 10s);
  CHECK(p.on_exit(1, false, at(0ms)).restart);
  CHECK(p.on_exit(1, false, at(5s)).restart);
  CHECK_FALSE(p.on_exit(1, false, at(9s)).restart);  // two within 10 s already
  auto later = p.on_exit(1, false, at(10s));         // the one at 0 s left the window
  REQUIRE(later.restart);
  CHECK(later.delay == 2 * RestartPolicy::kFirstBackoff);  // the one at 5 s still counts
  auto much_later = p.on_exit(1, false, at(60s));
  REQUIRE(much_later.restart);
  CHECK(much_later.delay == RestartPolicy::kFirstBackoff);
}

TEST_CASE("on-failure: the backoff is capped") {
  RestartPolicy p(RestartMode::kOnFailure, 100, 3600s);
  RestartPolicy::Decision d;
  for (int i = 0; i < 30; ++i) d = p.on_exit(1, false, at(std::chrono::seconds(i)));
  REQUIRE(d.restart);
  CHECK(d.delay == RestartPolicy::kMaxBackoff);
}
