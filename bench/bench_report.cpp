#include "bench/bench_report.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "bench/stats.hpp"
#include "launcher/version.hpp"

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

std::string json_run(const ServerRunResult& r, long cache_entries) {
  auto path = [](const PathTiming& p) {
    return fmt::format(R"({{"path": {}, "first_ms": {:.2f}, "steady_ms": {:.2f}, "status": {}}})",
                       json_string(p.path), p.first_ms, p.steady_ms, p.status);
  };
  return fmt::format(
      R"({{"ready_ms": {:.2f}, "peak_rss_kb": {}, "cache_entries": {}, "exit_code": {}, )"
      R"("paths": {}}})",
      r.ready_ms, r.peak_rss_kb, cache_entries, r.exit_code, json_array(r.paths, path));
}

std::string json_variant(const Variant& v, const std::vector<std::string>& paths, double base) {
  std::string samples = "[";
  for (size_t i = 0; i < v.runs.size(); ++i) {
    if (i > 0) samples += ", ";
    samples += json_run(v.runs[i], i < v.cache_entries.size() ? v.cache_entries[i] : 0);
  }
  samples += "]";
  std::string per_path = "{";
  for (size_t i = 0; i < paths.size(); ++i) {
    if (i > 0) per_path += ", ";
    per_path += fmt::format(R"({}: {{"first_ms": {}, "steady_ms": {}}})", json_string(paths[i]),
                            json_summary(first_samples(v, i)), json_summary(steady_samples(v, i)));
  }
  per_path += "}";
  double first = summarize(first_samples(v, 0)).median;
  return fmt::format(
      R"({{"name": {}, "argv": {}, "launcher": {}, "samples": {}, "summary": {{"ready_ms": {}, )"
      R"("paths": {}, "peak_rss_mb": {}, "first_vs_plain": {:.3f}}}}})",
      json_string(v.name), json_array(v.argv, json_string), v.is_launcher ? "true" : "false",
      samples, json_summary(ready_samples(v)), per_path, json_summary(rss_mb_samples(v)),
      base > 0 ? first / base : 0.0);
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
  std::printf(
      "\n%s: %d runs per variant, alternating; ms from spawn (ready = PORT accepts; "
      "first = first GET %s answered, sent when PORT accepts; steady = a later GET's "
      "latency)\n",
      scenario.description.c_str(), runs, paths.front().c_str());
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
    std::printf("first response per warm path, p50 ms from spawn (all sent together):\n");
    for (const auto& v : scenario.variants) {
      std::string line = fmt::format("{:<20}", v.name);
      for (size_t i = 0; i < paths.size(); ++i) {
        line += fmt::format(" {} {:.1f}", paths[i], summarize(first_samples(v, i)).median);
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
    doc += fmt::format(
        R"({}{{"name": {}, "description": {}, "cold_page_cache": {}, "slow_read_delay_us": {}, )"
        R"("variants": {}}})",
        i > 0 ? ", " : "", json_string(s.name), json_string(s.description),
        s.cold ? "true" : "false", s.slow_read_delay_us,
        json_array(s.variants, [&](const Variant& v) { return json_variant(v, paths, base); }));
  }
  doc += "]}\n";
  std::ofstream out(file, std::ios::trunc);
  out << doc;
  out.flush();
  if (!out) return Error{"cannot write " + file};
  return ok_status();
}

}  // namespace knext::bench
