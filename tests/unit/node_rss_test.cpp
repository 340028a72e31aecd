#include "probes/warm/node_rss.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <string>
#include <vector>

TEST_CASE("node RSS: read through the statm fd opened once; a bad pid is unusable") {
  knext::NodeRss self(getpid());
  REQUIRE(self.usable());
  auto before = self.bytes();
  REQUIRE(before.has_value());
  std::vector<char> grow(64u << 20, 1);  // touched: resident
  auto after = self.bytes();
  REQUIRE(after.has_value());
  CHECK(*after >= *before + (48u << 20));
  CHECK(grow[grow.size() / 2] == 1);
  knext::NodeRss none(-1);
  CHECK_FALSE(none.usable());
  CHECK_FALSE(none.bytes().has_value());
}
