#include <doctest/doctest.h>

#include "bench/stats.hpp"

TEST_CASE("summary: median, nearest-rank p90 and p99, min, max") {
  auto odd = knext::bench::summarize({5, 1, 3});
  CHECK(odd.median == 3);
  CHECK(odd.min == 1);
  CHECK(odd.p90 == 5);
  auto even = knext::bench::summarize({4, 1, 3, 2});
  CHECK(even.median == doctest::Approx(2.5));
  std::vector<double> ten;
  for (int i = 1; i <= 10; ++i) ten.push_back(i);
  CHECK(knext::bench::summarize(ten).p90 == 9);
  CHECK(knext::bench::summarize(ten).p99 == 10);
  CHECK(knext::bench::summarize(ten).max == 10);
  std::vector<double> hundred;
  for (int i = 100; i >= 1; --i) hundred.push_back(i);
  CHECK(knext::bench::summarize(hundred).p99 == 99);
  CHECK(knext::bench::summarize({}).count == 0);
}
