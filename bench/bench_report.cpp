#include "bench/bench_report.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "bench/stats.hpp"
#include "common/version.hpp"

namespace knext::bench {
namespace {

std::vector<double> rss_mb_samples(const Variant& v) {
  std::vector<double> out;
  for (const auto& r : v.runs) out.push_back(static_cast<double>(r.peak_rss_kb) / 1024.0);
  return out;
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (unsigned char ch : text) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      out += fmt::format("\\u{:04x}", ch);
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}

std::string json_summary(const std::vector<double>& samples) {
  auto s = summarize(samples);
  return fmt::format(R"({{"median": {:.2f}, "p90": {:.2f}, "min": {:.2f}}})", s.median, s.p90,
                     s.min);
}

template <class T, class F>
std::string json_array(const std::vector<T>& items, F&& item) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += item(items[i]);
  }
  return out + "]";
}

std::string json_burst(const WakeBurst* b) {
  if (b == nullptr) return "null";
  auto s = summarize(b->done_ms);
  return fmt::format(
      R"({{"requests": {}, "ok": {}, "p50_ms": {:.2f}, "p99_ms": {:.2f}, "max_ms": {:.2f}, )"
      R"("first_failure": {}}})",
      b->requests, b->ok, s.median, s.p99, s.max,
      b->first_failure.empty() ? "null" : json_string(b->first_failure));
}

std::string json_run(const ServerRunResult& r, long cache_entries, const WakeBurst* burst) {
  auto path = [](const PathTiming& p) {
    return fmt::format(R"({{"path": {}, "first_ms": {:.2f}, "steady_ms": {:.2f}, "status": {}}})",
                       json_string(p.path), p.first_ms, p.steady_ms, p.status);
  };
  auto unwarmed = [](const UnwarmedTiming& u) {
    return fmt::format(R"({{"path": {}, "first_ms": {:.2f}, "steady_ms": {:.2f}, "ratio": {:.3f}, )"
                       R"("status": {}}})",
                       json_string(u.path), u.first_ms, u.steady_ms, u.ratio(), u.status);
  };
  return fmt::format(
      R"({{"ready_ms": {:.2f}, "peak_rss_kb": {}, "cache_entries": {}, "exit_code": {}, )"
      R"("paths": {}, "unwarmed": {}, "wake_burst": {}}})",
      r.ready_ms, r.peak_rss_kb, cache_entries, r.exit_code, json_array(r.paths, path),
      json_array(r.unwarmed, unwarmed), json_burst(burst));
}

// Per-run figures of the wake burst: each run's p50, p99 or max completion from spawn.
std::vector<double> burst_samples(const Variant& v, double Summary::*figure) {
  std::vector<double> out;
  for (const auto& b : v.bursts) {
    if (!b.done_ms.empty()) out.push_back(summarize(b.done_ms).*figure);
  }
  return out;
}

std::vector<double> unwarmed_samples(const Variant& v, size_t index, bool ratio) {
  std::vector<double> out;
  for (const auto& r : v.runs) {
    if (index < r.unwarmed.size()) {
      out.push_back(ratio ? r.unwarmed[index].ratio() : r.unwarmed[index].first_ms);
    }
  }
  return out;
}

std::vector<std::string> unwarmed_paths(const Scenario& scenario) {
  std::vector<std::string> out;
  const auto& v = scenario.variants.front();
  if (!v.runs.empty()) {
    for (const auto& u : v.runs.front().unwarmed) out.push_back(u.path);
  }
  return out;
}

std::string json_variant(const Variant& v, const std::vector<std::string>& paths,
                         const std::vector<std::string>& unwarmed, double base,
                         double base_burst_p99) {
  std::string samples = "[";
  for (size_t i = 0; i < v.runs.size(); ++i) {
    if (i > 0) samples += ", ";
    samples += json_run(v.runs[i], i < v.cache_entries.size() ? v.cache_entries[i] : 0,
                        i < v.bursts.size() ? &v.bursts[i] : nullptr);
  }
  samples += "]";
  std::string per_path = "{";
  for (size_t i = 0; i < paths.size(); ++i) {
    if (i > 0) per_path += ", ";
    per_path += fmt::format(R"({}: {{"first_ms": {}, "steady_ms": {}}})", json_string(paths[i]),
                            json_summary(first_samples(v, i)), json_summary(steady_samples(v, i)));
  }
  per_path += "}";
  std::string per_unwarmed = "{";
  for (size_t i = 0; i < unwarmed.size(); ++i) {
    if (i > 0) per_unwarmed += ", ";
    per_unwarmed += fmt::format(R"({}: {{"first_ms": {}, "ratio": {}}})", json_string(unwarmed[i]),
                                json_summary(unwarmed_samples(v, i, false)),
                                json_summary(unwarmed_samples(v, i, true)));
  }
  per_unwarmed += "}";
  double first = summarize(first_samples(v, 0)).median;
  double burst_p99 = summarize(burst_samples(v, &Summary::p99)).median;
  return fmt::format(
      R"({{"name": {}, "argv": {}, "launcher": {}, "samples": {}, "summary": {{"ready_ms": {}, )"
      R"("paths": {}, "peak_rss_mb": {}, "first_vs_plain": {:.3f}, )"
      R"("wake_burst": {{"p50_ms": {}, "p99_ms": {}, "max_ms": {}, "p99_vs_plain": {:.3f}}}, )"
      R"("unwarmed": {}}}}})",
      json_string(v.name), json_array(v.argv, json_string), v.is_launcher ? "true" : "false",
      samples, json_summary(ready_samples(v)), per_path, json_summary(rss_mb_samples(v)),
      base > 0 ? first / base : 0.0, json_summary(burst_samples(v, &Summary::median)),
      json_summary(burst_samples(v, &Summary::p99)), json_summary(burst_samples(v, &Summary::max)),
      base_burst_p99 > 0 ? burst_p99 / base_burst_p99 : 0.0, per_unwarmed);
}

}  // namespace

std::vector<double> ready_samples(const Variant& v) {
  std::vector<double> out;
  for (const auto& r : v.runs) out.push_back(r.ready_ms);
  return out;
}

std::vector<double> first_samples(const Variant& v, size_t index) {
  std::vector<double> out;
  for (const auto& r : v.runs) {
    if (index < r.paths.size()) out.push_back(r.paths[index].first_ms);
  }
  return out;
}

std::vector<double> steady_samples(const Variant& v, size_t index) {
  std::vector<double> out;
  for (const auto& r : v.runs) {
    if (index < r.paths.size()) out.push_back(r.paths[index].steady_ms);
  }
  return out;
}

void print_table(const Scenario& scenario, const std::vector<std::string>& paths, int runs) {
  std::string all_paths;
  for (const auto& p : paths) all_paths += (all_paths.empty() ? "" : " ") + p;
  std::printf(
      "\n%s: %d runs per variant, alternating; ms from spawn (ready = PORT accepts; first = "
      "the first GET of %s answered; the first GETs of every warm path (%s) go out together "
      "when PORT accepts; steady = a later GET's latency)\n",
      scenario.description.c_str(), runs, paths.front().c_str(), all_paths.c_str());
  std::printf("%-20s %9s %9s %9s %10s %10s %10s %9s %10s %9s %8s\n", "variant", "ready p50",
              "ready p90", "ready min", "first p50", "first p90", "first min", "vs plain",
              "steady p50", "init RSS", "entries");
  const auto& base_variant = scenario.variants.front();
  double base = summarize(first_samples(base_variant, 0)).median;
  for (const auto& v : scenario.variants) {
    auto ready = summarize(ready_samples(v));
    auto first = summarize(first_samples(v, 0));
    auto steady = summarize(steady_samples(v, 0));
    std::string rss =
        &v == &base_variant ? "-" : fmt::format("{:.1f} MB", summarize(rss_mb_samples(v)).median);
    std::string entries = v.cache_dir.empty() || v.cache_entries.empty()
                              ? "-"
                              : std::to_string(v.cache_entries.back());
    std::printf("%-20s %9.1f %9.1f %9.1f %10.1f %10.1f %10.1f %8.2fx %10.1f %9s %8s\n",
                v.name.c_str(), ready.median, ready.p90, ready.min, first.median, first.p90,
                first.min, base > 0 ? first.median / base : 0.0, steady.median, rss.c_str(),
                entries.c_str());
  }
  if (paths.size() > 1) {
    std::printf("first response per warm path, p50 ms from spawn (vs plain node):\n");
    std::string header = fmt::format("{:<20}", "variant");
    for (const auto& p : paths) header += fmt::format(" {:>18}", p);
    std::printf("%s\n", header.c_str());
    for (const auto& v : scenario.variants) {
      std::string line = fmt::format("{:<20}", v.name);
      for (size_t i = 0; i < paths.size(); ++i) {
        double median = summarize(first_samples(v, i)).median;
        double plain = summarize(first_samples(base_variant, i)).median;
        line += fmt::format(
            " {:>18}", fmt::format("{:.1f} ({:.2f}x)", median, plain > 0 ? median / plain : 0.0));
      }
      std::printf("%s\n", line.c_str());
    }
  }
  std::printf(
      "wake burst: %d GETs round-robin over the warm paths, held from spawn (connect retried "
      "every 5 ms, as the activator does), own start per run; completion ms from spawn, median "
      "over runs of each run's figure:\n",
      kWakeBurstRequests);
  std::printf("%-20s %9s %9s %9s %12s %6s\n", "variant", "p50", "p99", "max", "p99 vs plain",
              "2xx");
  double base_p99 = summarize(burst_samples(base_variant, &Summary::p99)).median;
  for (const auto& v : scenario.variants) {
    double p99 = summarize(burst_samples(v, &Summary::p99)).median;
    long ok = v.bursts.empty() ? 0 : v.bursts.back().ok;
    long sent = v.bursts.empty() ? 0 : v.bursts.back().requests;
    std::printf("%-20s %9.1f %9.1f %9.1f %11.2fx %3ld/%ld\n", v.name.c_str(),
                summarize(burst_samples(v, &Summary::median)).median, p99,
                summarize(burst_samples(v, &Summary::max)).median,
                base_p99 > 0 ? p99 / base_p99 : 0.0, ok, sent);
  }
  auto unwarmed = unwarmed_paths(scenario);
  if (!unwarmed.empty()) {
    std::printf(
        "routes not warmed: first GET after the warm paths answered, ms, and its ratio to the "
        "median of %d GETs after it (medians over runs):\n",
        kUnwarmedSteadyGets);
    std::string header = fmt::format("{:<20}", "variant");
    for (const auto& p : unwarmed) header += fmt::format(" {:>20}", p);
    std::printf("%s\n", header.c_str());
    for (const auto& v : scenario.variants) {
      std::string line = fmt::format("{:<20}", v.name);
      for (size_t i = 0; i < unwarmed.size(); ++i) {
        line += fmt::format(" {:>20}", fmt::format("{:.1f} ({:.1f}x)",
                                                   summarize(unwarmed_samples(v, i, false)).median,
                                                   summarize(unwarmed_samples(v, i, true)).median));
      }
      std::printf("%s\n", line.c_str());
    }
  }
  std::fflush(stdout);
}

Status write_json(const std::string& file, const std::vector<Scenario>& scenarios,
                  const std::vector<std::string>& paths, int runs) {
  std::string doc = fmt::format(R"({{"tool": "knext-launch --bench", "version": {}, "runs": {}, )"
                                R"("paths": {}, "scenarios": [)",
                                json_string(kVersion), runs, json_array(paths, json_string));
  for (size_t i = 0; i < scenarios.size(); ++i) {
    const auto& s = scenarios[i];
    double base = summarize(first_samples(s.variants.front(), 0)).median;
    double base_burst = summarize(burst_samples(s.variants.front(), &Summary::p99)).median;
    auto unwarmed = unwarmed_paths(s);
    doc += fmt::format(
        R"({}{{"name": {}, "description": {}, "cold_page_cache": {}, "slow_read_delay_us": {}, )"
        R"("variants": {}}})",
        i > 0 ? ", " : "", json_string(s.name), json_string(s.description),
        s.cold ? "true" : "false", s.slow_read_delay_us,
        json_array(s.variants, [&](const Variant& v) {
          return json_variant(v, paths, unwarmed, base, base_burst);
        }));
  }
  doc += "]}\n";
  std::ofstream out(file, std::ios::trunc);
  out << doc;
  out.flush();
  if (!out) return Error{"cannot write " + file};
  return ok_status();
}

}  // namespace knext::bench
