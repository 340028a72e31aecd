#pragma once
#include <string>
#include <vector>

#include "bench/scenario.hpp"
#include "common/expected.hpp"

namespace knext::bench {

// Median, p90 and min of each figure per variant, and the first response's ratio to the first
// variant (plain node). `paths`: the warm paths; the first one is the table's "first" column.
void print_table(const Scenario& scenario, const std::vector<std::string>& paths, int runs);

// Every raw sample of every scenario, with the same summaries, as one JSON document.
Status write_json(const std::string& file, const std::vector<Scenario>& scenarios,
                  const std::vector<std::string>& paths, int runs);

// Per-run figures as vectors, for summaries: the first (or steady) time of paths[index].
std::vector<double> ready_samples(const Variant& v);
std::vector<double> first_samples(const Variant& v, size_t index);
std::vector<double> steady_samples(const Variant& v, size_t index);

}  // namespace knext::bench
