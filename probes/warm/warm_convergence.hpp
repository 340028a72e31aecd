#pragma once
#include <optional>
#include <span>

// When to stop repeating a warm-up request: the pure rule the warm-up worker applies to the
// latencies it measured for one path (first answer first). README "Adaptive warm-up" says how
// the tolerances were chosen.
namespace knext {

struct ConvergenceRule {
  double steady_tolerance = 0.30;  // a repeat within 30% of the steady latency --prewarm recorded
  // Before the gate, with a record: an answer within 2x the recorded steady latency ends the
  // path, the first one included. The next request (the user's) is then within the 2x the gate
  // promises, and every further repeat would only add its own latency to the held user's wait.
  double gate_tolerance = 1.0;
  double pair_tolerance = 0.20;  // without a record: two consecutive repeats within 20%
  double noise_ms = 2.0;         // differences below this are timer noise, whatever the ratio
  // One more repeat costs a held request its own latency and saves it the drop to the next: it
  // can pay only while the last repeat cut the one before by at least this share (at 0.5, the
  // time it cost is won back by one waiting request).
  double paying_drop = 0.5;
  int cap = 8;  // --warm-repeat: requests per path at most
  // Stop once repeats bring no gain or stop paying. Off in the background, where repeats cost
  // no user's wait: there only agreement (or the cap) ends them.
  bool stop_without_gain = true;
};

enum class RepeatVerdict {
  kRepeat,     // the last repeat still got faster: one more pays
  kConverged,  // at the steady latency (or two repeats agree near the best seen)
  kNoGain,     // two repeats in a row not faster than the best before them: more cannot pay
  kNotPaying,  // the last repeat did not cut the one before by paying_drop: one more costs more
  kCapped,     // --warm-repeat requests sent
};

RepeatVerdict judge_repeats(std::span<const double> latencies_ms, std::optional<double> steady_ms,
                            const ConvergenceRule& rule);

const char* verdict_name(RepeatVerdict verdict);

// One sample of the server's main thread, taken while a warm-up request runs.
struct CpuSample {
  double at_ms = 0;       // wall clock
  double cpu_ms = 0;      // the thread's CPU time so far
  bool sleeping = false;  // in an interruptible sleep (node's event loop waiting), not on disk
};

// True when, over the last `window_ms` of samples, the thread used at most `max_cpu_fraction`
// of the wall time and slept (interruptibly) at every sample: the request is waiting on the
// app's own timers or I/O, which no warm-up shortens.
bool mostly_waiting(std::span<const CpuSample> samples, double window_ms, double max_cpu_fraction);

}  // namespace knext
