#include <doctest/doctest.h>

#include "probes/warm/warm_worker.hpp"

TEST_CASE("warm-up result lines round-trip, tabs and newlines in errors included") {
  knext::WarmPathStatus s;
  s.path = "/slow?x=1";
  s.state = knext::WarmState::kFailed;
  s.last_status = 500;
  s.attempts = 12;
  s.first_ms = 412.25;
  s.last_ms = 12.5;
  s.background = true;
  s.holds_gate = false;
  s.result = "server-error";
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
  CHECK(back->first_ms == doctest::Approx(412.25));
  CHECK(back->last_ms == doctest::Approx(12.5));
  CHECK(back->background);
  CHECK_FALSE(back->holds_gate);
  CHECK(back->result == "server-error");
  CHECK(back->last_error == "Failed to connect");
}

TEST_CASE("warm-up result lines: malformed input is an error") {
  for (auto bad : {"", "ok", "path\tc\tok\t200\t1\t/", "path\tx\tok\t200\t1\t0\t0\t1\t\t/\t",
                   "path\tc\tmaybe\t200\t1\t0\t0\t1\t\t/\t", "path\tc\tok\tx\t1\t0\t0\t1\t\t/\t",
                   "path\tc\tok\t200\t1\t0\t0\t1\t\t\t"}) {
    CAPTURE(bad);
    CHECK_FALSE(knext::parse_warm_result(bad).ok());
  }
}
