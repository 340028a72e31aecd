#include "bench/bench_report.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "bench/stats.hpp"
#include "common/version.hpp"

namespace knext::bench {
namespace {

std::vector<double> mb_samples(const Variant& v, long ServerRunResult::*kb) {
  std::vector<double> out;
  for (const auto& r : v.runs) out.push_back(static_cast<double>(r.*kb) / 1024.0);
  return out;
}

namespace json = boost::json;

// Figures are written as the table shows them: ms to 2 decimals, ratios to 3.
double ms(double value) {
  return rounded(value, 100);
}
double ratio(double value) {
  return rounded(value, 1000);
}

json::object json_summary(const std::vector<double>& samples) {
  auto s = summarize(samples);
  return {{"median", ms(s.median)}, {"p90", ms(s.p90)}, {"min", ms(s.min)}};
}

json::array json_strings(const std::vector<std::string>& items) {
  return json::array(items.begin(), items.end());
}

json::value json_burst(const WakeBurst* b) {
  if (b == nullptr) return nullptr;
  auto s = summarize(b->done_ms);
  json::value first_failure = nullptr;
  if (!b->first_failure.empty()) first_failure = json::string(b->first_failure);
  return json::object{{"requests", b->requests}, {"ok", b->ok},
                      {"p50_ms", ms(s.median)},  {"p99_ms", ms(s.p99)},
                      {"max_ms", ms(s.max)},     {"first_failure", std::move(first_failure)}};
}

json::object json_run(const ServerRunResult& r, long cache_entries, const WakeBurst* burst) {
  json::array paths;
  for (const auto& p : r.paths) {
    paths.push_back(json::object{{"path", p.path},
                                 {"first_ms", ms(p.first_ms)},
                                 {"steady_ms", ms(p.steady_ms)},
                                 {"status", p.status}});
  }
  json::array unwarmed;
  for (const auto& u : r.unwarmed) {
    unwarmed.push_back(json::object{{"path", u.path},
                                    {"first_ms", ms(u.first_ms)},
                                    {"steady_ms", ms(u.steady_ms)},
                                    {"ratio", ratio(u.ratio())},
                                    {"status", u.status}});
  }
  return {{"ready_ms", ms(r.ready_ms)},     {"peak_rss_kb", r.peak_rss_kb},
          {"node_rss_kb", r.node_rss_kb},   {"node_peak_kb", r.node_peak_kb},
          {"cache_entries", cache_entries}, {"exit_code", r.exit_code},
          {"paths", std::move(paths)},      {"unwarmed", std::move(unwarmed)},
          {"wake_burst", json_burst(burst)}};
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

json::object json_variant(const Variant& v, const std::vector<std::string>& paths,
                          const std::vector<std::string>& unwarmed, double base,
                          double base_burst_p99) {
  json::array samples;
  for (size_t i = 0; i < v.runs.size(); ++i) {
    samples.push_back(json_run(v.runs[i], i < v.cache_entries.size() ? v.cache_entries[i] : 0,
                               i < v.bursts.size() ? &v.bursts[i] : nullptr));
  }
  json::object per_path;
  for (size_t i = 0; i < paths.size(); ++i) {
    per_path[paths[i]] = json::object{{"first_ms", json_summary(first_samples(v, i))},
                                      {"steady_ms", json_summary(steady_samples(v, i))}};
  }
  json::object per_unwarmed;
  for (size_t i = 0; i < unwarmed.size(); ++i) {
    per_unwarmed[unwarmed[i]] =
        json::object{{"first_ms", json_summary(unwarmed_samples(v, i, false))},
                     {"ratio", json_summary(unwarmed_samples(v, i, true))}};
  }
  double first = summarize(first_samples(v, 0)).median;
  double burst_p99 = summarize(burst_samples(v, &Summary::p99)).median;
  json::object wake_burst{
      {"p50_ms", json_summary(burst_samples(v, &Summary::median))},
      {"p99_ms", json_summary(burst_samples(v, &Summary::p99))},
      {"max_ms", json_summary(burst_samples(v, &Summary::max))},
      {"p99_vs_plain", ratio(base_burst_p99 > 0 ? burst_p99 / base_burst_p99 : 0.0)}};
  json::object summary{
      {"ready_ms", json_summary(ready_samples(v))},
      {"paths", std::move(per_path)},
      {"peak_rss_mb", json_summary(mb_samples(v, &ServerRunResult::peak_rss_kb))},
      {"node_rss_mb", json_summary(mb_samples(v, &ServerRunResult::node_rss_kb))},
      {"node_peak_mb", json_summary(mb_samples(v, &ServerRunResult::node_peak_kb))},
      {"first_vs_plain", ratio(base > 0 ? first / base : 0.0)},
      {"wake_burst", std::move(wake_burst)},
      {"unwarmed", std::move(per_unwarmed)}};
  return {{"name", v.name},
          {"argv", json_strings(v.argv)},
          {"launcher", v.is_launcher},
          {"samples", std::move(samples)},
          {"summary", std::move(summary)}};
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
  std::printf("%-20s %9s %9s %9s %10s %10s %10s %9s %10s %9s %8s %9s %9s\n", "variant", "ready p50",
              "ready p90", "ready min", "first p50", "first p90", "first min", "vs plain",
              "steady p50", "init RSS", "entries", "node RSS", "node peak");
  const auto& base_variant = scenario.variants.front();
  double base = summarize(first_samples(base_variant, 0)).median;
  for (const auto& v : scenario.variants) {
    auto ready = summarize(ready_samples(v));
    auto first = summarize(first_samples(v, 0));
    auto steady = summarize(steady_samples(v, 0));
    // Plain node and its preload-off copy have no init: their process is node.
    bool no_init = v.key == "plain" || v.key == "nopreload";
    auto mb = [&](long ServerRunResult::*kb) {
      return fmt::format("{:.0f} MB", summarize(mb_samples(v, kb)).median);
    };
    std::string rss =
        no_init ? "-"
                : fmt::format("{:.1f} MB",
                              summarize(mb_samples(v, &ServerRunResult::peak_rss_kb)).median);
    std::string entries = v.cache_dir.empty() || v.cache_entries.empty()
                              ? "-"
                              : std::to_string(v.cache_entries.back());
    std::printf("%-20s %9.1f %9.1f %9.1f %10.1f %10.1f %10.1f %8.2fx %10.1f %9s %8s %9s %9s\n",
                v.name.c_str(), ready.median, ready.p90, ready.min, first.median, first.p90,
                first.min, base > 0 ? first.median / base : 0.0, steady.median, rss.c_str(),
                entries.c_str(), mb(&ServerRunResult::node_rss_kb).c_str(),
                mb(&ServerRunResult::node_peak_kb).c_str());
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
      "wake burst: %d GETs round-robin over the warm paths, held from spawn and released at "
      "once by the first passing TCP probe of PORT (every 50 ms from spawn, as queue-proxy "
      "probes), own start per run; completion ms from spawn, median over runs of each run's "
      "figure:\n",
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
  json::array done;
  for (const auto& s : scenarios) {
    double base = summarize(first_samples(s.variants.front(), 0)).median;
    double base_burst = summarize(burst_samples(s.variants.front(), &Summary::p99)).median;
    auto unwarmed = unwarmed_paths(s);
    json::array variants;
    for (const auto& v : s.variants) {
      variants.push_back(json_variant(v, paths, unwarmed, base, base_burst));
    }
    done.push_back(json::object{{"name", s.name},
                                {"description", s.description},
                                {"cold_page_cache", s.cold},
                                {"slow_read_delay_us", s.slow_read_delay_us},
                                {"variants", std::move(variants)}});
  }
  json::object doc{{"tool", "knext-launch --bench"},
                   {"version", kVersion},
                   {"runs", runs},
                   {"paths", json_strings(paths)},
                   {"scenarios", std::move(done)}};
  std::ofstream out(file, std::ios::trunc);
  out << json::serialize(doc) << '\n';
  out.flush();
  if (!out) return Error{"cannot write " + file};
  return ok_status();
}

}  // namespace knext::bench
