#include "bench/stats.hpp"

#include <algorithm>
#include <cmath>

namespace knext::bench {

double rounded(double value, double scale) {
  return std::round(value * scale) / scale;
}

Summary summarize(std::vector<double> samples) {
  Summary s;
  s.count = samples.size();
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  size_t n = samples.size();
  s.min = samples.front();
  s.median = n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  auto nearest_rank = [&](double q) {
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(n)));
    return samples[std::max<size_t>(rank, 1) - 1];
  };
  s.p90 = nearest_rank(0.9);
  s.p99 = nearest_rank(0.99);
  s.max = samples.back();
  return s;
}

}  // namespace knext::bench
