#include <doctest/doctest.h>

#include "probes/warm_worker.hpp"

TEST_CASE("warm-up result lines round-trip, tabs and newlines in errors included") {
  knext::WarmPathStatus s;
  s.path = "/slow?x=1";
  s.state = knext::WarmState::kFailed;
  s.last_status = 500;
  s.attempts = 12;
  s.last_error = "Failed\tto\nconnect";
  std::string line = knext::format_warm_result(s);
  REQUIRE(line.back() == '\n');
  line.pop_back();
  auto back = knext::parse_warm_result(line);
  REQUIRE(back.ok());
  CHECK(back->path == "/slow?x=1");
  CHECK(back->state == knext::WarmState::kFailed);
  CHECK(back->last_status == 500);
  CHECK(back->attempts == 12);
  CHECK(back->last_error == "Failed to connect");
}

TEST_CASE("warm-up result lines: malformed input is an error") {
  for (auto bad : {"", "ok", "ok\t200\t1\t/", "maybe\t200\t1\t/\t", "ok\tx\t1\t/\t"}) {
    CAPTURE(bad);
    CHECK_FALSE(knext::parse_warm_result(bad).ok());
  }
}
