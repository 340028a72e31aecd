#include "probes/warm/warm_convergence.hpp"

#include <algorithm>
#include <cmath>

namespace knext {

RepeatVerdict judge_repeats(std::span<const double> latencies_ms, std::optional<double> steady_ms,
                            const ConvergenceRule& rule) {
  size_t n = latencies_ms.size();
  if (n == 0) return RepeatVerdict::kRepeat;
  double last = latencies_ms[n - 1];
  if (steady_ms && rule.stop_without_gain &&
      last <= *steady_ms * (1 + rule.gate_tolerance) + rule.noise_ms) {
    return RepeatVerdict::kConverged;
  }
  // In the background the first answer alone never converges: it may be fast only because
  // another path already loaded the shared code, while V8 has not optimised this route's own.
  if (steady_ms && n >= 2 && last <= *steady_ms * (1 + rule.steady_tolerance) + rule.noise_ms) {
    return RepeatVerdict::kConverged;
  }
  if (n >= 2) {
    double before = latencies_ms[n - 2];
    double best = *std::min_element(latencies_ms.begin(), latencies_ms.end());
    auto near = [&](double a, double b) {
      return std::abs(a - b) <= std::max(rule.pair_tolerance * b, rule.noise_ms);
    };
    // Two repeats agreeing at (or near) the best latency seen: converged. In the background,
    // where repeats cost no user's wait, three in a row: two can agree on a plateau V8 has
    // not yet optimised past.
    bool agree = near(last, before) && near(last, best);
    if (!rule.stop_without_gain) agree = agree && n >= 3 && near(before, latencies_ms[n - 3]);
    if (!steady_ms && agree) return RepeatVerdict::kConverged;
    // Before the gate every repeat is part of the held user's wait: the next one pays only if
    // the last one still cut the latency by paying_drop (beyond noise).
    if (rule.stop_without_gain && last > before * (1 - rule.paying_drop) + rule.noise_ms) {
      return RepeatVerdict::kNotPaying;
    }
    // Two repeats in a row without a new best (beyond noise): more cannot pay. One is not
    // enough: single latencies on a busy machine jump around.
    if (rule.stop_without_gain && n >= 3) {
      double best_before = *std::min_element(latencies_ms.begin(), latencies_ms.end() - 2);
      if (before >= best_before - rule.noise_ms && last >= best_before - rule.noise_ms) {
        return RepeatVerdict::kNoGain;
      }
    }
  }
  if (static_cast<int>(n) >= rule.cap) return RepeatVerdict::kCapped;
  return RepeatVerdict::kRepeat;
}

const char* verdict_name(RepeatVerdict verdict) {
  switch (verdict) {
    case RepeatVerdict::kRepeat:
      return "repeating";
    case RepeatVerdict::kConverged:
      return "converged";
    case RepeatVerdict::kNoGain:
      return "no-gain";
    case RepeatVerdict::kNotPaying:
      return "not-paying";
    case RepeatVerdict::kCapped:
      return "capped";
  }
  return "repeating";
}

bool mostly_waiting(std::span<const CpuSample> samples, double window_ms, double max_cpu_fraction) {
  if (samples.size() < 2) return false;
  const CpuSample& last = samples.back();
  size_t first = samples.size() - 1;
  while (first > 0 && last.at_ms - samples[first].at_ms < window_ms) --first;
  const CpuSample& start = samples[first];
  double wall = last.at_ms - start.at_ms;
  if (wall < window_ms) return false;
  for (size_t i = first; i < samples.size(); ++i) {
    if (!samples[i].sleeping) return false;
  }
  return last.cpu_ms - start.cpu_ms <= max_cpu_fraction * wall;
}

}  // namespace knext
