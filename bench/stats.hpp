#pragma once
#include <cstddef>
#include <vector>

namespace knext::bench {

struct Summary {
  double median = 0;
  double p90 = 0;
  double p99 = 0;
  double min = 0;
  double max = 0;
  size_t count = 0;
};

Summary summarize(std::vector<double> samples);

}  // namespace knext::bench
