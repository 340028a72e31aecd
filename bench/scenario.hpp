#pragma once
#include <string>
#include <vector>

#include "bench/variants.hpp"

namespace knext::bench {

// One table of the comparison: every variant run alternately under the same conditions.
struct Scenario {
  std::string name;         // warm, cold, slow-storage
  std::string description;  // printed above the table
  bool cold = false;        // files evicted before each run
  long slow_read_delay_us = 0;
  std::vector<Variant> variants;
};

}  // namespace knext::bench
