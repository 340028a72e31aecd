#include <doctest/doctest.h>

#include "common/value_parsers.hpp"

using std::chrono::milliseconds;

TEST_CASE("durations: units, bare seconds, fractions") {
  CHECK(knext::parse_duration("25s") == milliseconds(25'000));
  CHECK(knext::parse_duration("500ms") == milliseconds(500));
  CHECK(knext::parse_duration("2m") == milliseconds(120'000));
  CHECK(knext::parse_duration("1.5s") == milliseconds(1'500));
  CHECK(knext::parse_duration("10") == milliseconds(10'000));
  CHECK(knext::parse_duration("0") == milliseconds(0));
}

TEST_CASE("durations: rejects garbage, negatives, unknown units, absurd sizes") {
  for (auto bad : {"", "s", "-1s", "5 s", "5sec", "abc", "1e300", "nan", "9999h"}) {
    CHECK_FALSE(knext::parse_duration(bad).has_value());
  }
}

TEST_CASE("booleans") {
  CHECK(knext::parse_bool("TRUE") == true);
  CHECK(knext::parse_bool("on") == true);
  CHECK(knext::parse_bool("0") == false);
  CHECK(knext::parse_bool("No") == false);
  CHECK_FALSE(knext::parse_bool("2").has_value());
}

TEST_CASE("byte sizes: binary and decimal units, bare bytes") {
  CHECK(knext::parse_bytes("256MiB") == 256ull << 20);
  CHECK(knext::parse_bytes("1GiB") == 1ull << 30);
  CHECK(knext::parse_bytes("100MB") == 100'000'000ull);
  CHECK(knext::parse_bytes("4096") == 4096ull);
  CHECK(knext::parse_bytes("0") == 0ull);
  for (auto bad : {"", "MiB", "-1", "1.5GiB", "12 MiB", "3TiB", "99999999999GiB"}) {
    CAPTURE(bad);
    CHECK_FALSE(knext::parse_bytes(bad).has_value());
  }
}
