#include <doctest/doctest.h>

#include <vector>

#include "probes/warm/warm_convergence.hpp"

using knext::ConvergenceRule;
using knext::CpuSample;
using knext::judge_repeats;
using knext::RepeatVerdict;

namespace {

// Replays a recorded sequence request by request: how many requests the rule sends, and why it
// stopped.
struct Replay {
  size_t sent = 0;
  RepeatVerdict verdict = RepeatVerdict::kRepeat;
};

Replay replay(const std::vector<double>& recorded, std::optional<double> steady,
              ConvergenceRule rule = {}) {
  Replay r;
  std::vector<double> seen;
  for (double ms : recorded) {
    seen.push_back(ms);
    r.verdict = judge_repeats(seen, steady, rule);
    if (r.verdict != RepeatVerdict::kRepeat) break;
  }
  r.sent = seen.size();
  return r;
}

}  // namespace

// Sequences recorded on the fixture (plain node, one fresh server per path, 10 GETs one after
// another; README "Adaptive warm-up").
TEST_CASE("recorded /dynamic: the cold render, then repeats while each one still pays") {
  auto r = replay({699.7, 92.0, 34.8, 43.6, 31.9, 13.1, 22.5, 12.9, 14.5, 18.9}, std::nullopt);
  // 92.0 and 34.8 each cut the one before by more than half; 43.6 did not: a fifth request
  // would cost the held user ~30 ms to save them at most ~20.
  CHECK(r.sent == 4);
  CHECK(r.verdict == RepeatVerdict::kNotPaying);
}

TEST_CASE("recorded /slow: a page waiting 300 ms gains nothing from a repeat") {
  auto r = replay({659.1, 363.6, 353.5, 346.9, 321.1}, std::nullopt);
  CHECK(r.sent == 2);  // 363.6 is not half of 659.1
  CHECK(r.verdict == RepeatVerdict::kNotPaying);
}

TEST_CASE("recorded /api/checksum: with the steady latency --prewarm recorded") {
  std::vector<double> seq{219.4, 44.7, 14.1, 23.7, 22.1, 28.3, 40.9, 15.5, 10.4, 85.3};
  auto with_record = replay(seq, 12.0);
  CHECK(with_record.sent == 3);  // 44.7 is above 2x (+2 ms) of 12, 14.1 within
  CHECK(with_record.verdict == RepeatVerdict::kConverged);
  auto without = replay(seq, std::nullopt);
  CHECK(without.sent == 4);  // 23.7 after 14.1: not paying
  CHECK(without.verdict == RepeatVerdict::kNotPaying);
}

TEST_CASE(
    "before the gate an answer within 2x the recorded steady latency ends the path, the first "
    "one included; in the background the first answer still gets a repeat") {
  auto r = replay({9.0, 8.0, 8.0}, 8.5);
  CHECK(r.sent == 1);
  CHECK(r.verdict == RepeatVerdict::kConverged);
  CHECK(replay({18.0, 9.0}, 8.5).sent == 1);   // 18 <= 2 x 8.5 + 2
  CHECK(replay({40.0, 15.0}, 8.5).sent == 2);  // 40 is not, 15 is
  ConvergenceRule background;
  background.stop_without_gain = false;
  auto later = replay({9.0, 8.0, 8.0}, 8.5, background);
  CHECK(later.sent == 2);
  CHECK(later.verdict == RepeatVerdict::kConverged);
  CHECK(replay({18.0, 14.0, 9.0}, 8.5, background).sent == 3);  // only within 30% (+2 ms)
}

TEST_CASE("a repeat that does not halve the one before stops it, record or not") {
  CHECK(judge_repeats(std::vector<double>{100, 150}, std::nullopt, {}) ==
        RepeatVerdict::kNotPaying);
  CHECK(judge_repeats(std::vector<double>{100, 52}, std::nullopt, {}) == RepeatVerdict::kRepeat);
  CHECK(judge_repeats(std::vector<double>{100, 120, 130}, 10.0, {}) == RepeatVerdict::kNotPaying);
  CHECK(judge_repeats(std::vector<double>{100, 120, 60}, 10.0, {}) == RepeatVerdict::kRepeat);
}

TEST_CASE("two repeats in a row without a new best stop it even when the last one halved") {
  CHECK(judge_repeats(std::vector<double>{10, 30, 14}, std::nullopt, {}) == RepeatVerdict::kNoGain);
}

TEST_CASE(
    "in the background no-gain and not-paying do not stop repeats; three agreeing or the cap "
    "does") {
  ConvergenceRule rule;
  rule.stop_without_gain = false;
  auto r =
      replay({219.4, 44.7, 14.1, 23.7, 22.1, 28.3, 40.9, 15.5, 10.4, 85.3}, std::nullopt, rule);
  CHECK(r.sent == 8);
  CHECK(r.verdict == RepeatVerdict::kCapped);
  // Three in a row must agree there: two are not enough.
  CHECK(replay({659.1, 363.6, 353.5}, std::nullopt, rule).verdict == RepeatVerdict::kRepeat);
  auto three = replay({659.1, 363.6, 353.5, 346.9, 321.1}, std::nullopt, rule);
  CHECK(three.sent == 4);
  CHECK(three.verdict == RepeatVerdict::kConverged);
}

TEST_CASE("--warm-repeat caps a sequence that keeps getting faster") {
  ConvergenceRule rule;
  rule.cap = 3;
  auto r = replay({800, 400, 200, 100, 50}, std::nullopt, rule);
  CHECK(r.sent == 3);
  CHECK(r.verdict == RepeatVerdict::kCapped);
  rule.cap = 1;
  CHECK(replay({800, 400}, std::nullopt, rule).sent == 1);
}

TEST_CASE("tiny latencies: differences under the noise floor agree") {
  auto r = replay({30.0, 1.9, 3.1}, std::nullopt);
  CHECK(r.sent == 3);
  CHECK(r.verdict == RepeatVerdict::kConverged);
}

TEST_CASE("mostly_waiting: a thread asleep with almost no CPU for the window is waiting") {
  std::vector<CpuSample> samples;
  for (int i = 0; i <= 12; ++i) samples.push_back({i * 5.0, 100 + i * 0.1, true});
  CHECK(knext::mostly_waiting(samples, 50, 0.10));
}

TEST_CASE("mostly_waiting: not while the thread runs, reads from disk, or too soon") {
  std::vector<CpuSample> busy;
  for (int i = 0; i <= 12; ++i) busy.push_back({i * 5.0, i * 4.0, true});
  CHECK_FALSE(knext::mostly_waiting(busy, 50, 0.10));
  std::vector<CpuSample> disk;
  for (int i = 0; i <= 12; ++i) disk.push_back({i * 5.0, 0, i != 7});
  CHECK_FALSE(knext::mostly_waiting(disk, 50, 0.10));
  std::vector<CpuSample> young;
  for (int i = 0; i <= 5; ++i) young.push_back({i * 5.0, 0, true});
  CHECK_FALSE(knext::mostly_waiting(young, 50, 0.10));
  // A CPU-heavy start followed by a long enough sleep: waiting now.
  std::vector<CpuSample> later;
  for (int i = 0; i <= 10; ++i) later.push_back({i * 5.0, i * 5.0, false});
  for (int i = 11; i <= 22; ++i) later.push_back({i * 5.0, 50.5, true});
  CHECK(knext::mostly_waiting(later, 50, 0.10));
}
