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

// `value` to the nearest 1/scale (scale 1000: to the µs of a ms figure), as reports write it.
double rounded(double value, double scale);

}  // namespace knext::bench
