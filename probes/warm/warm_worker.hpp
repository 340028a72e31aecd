#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"
#include "probes/launch_state.hpp"

// Warm-up runs in a short-lived child process (`knext-launch --warm-worker [OPTIONS] PATH...`) so
// that libcurl (megabytes resident; README "Cost") is never mapped into PID 1. The launcher
// starts it while node boots and talks to it in lines:
//   launcher -> worker: "go <host> <port> <timeout_ms> <repeat cap> <node pid>" once the server
//     listens; later "bg <budget_ms>" (warm the background routes), "busy" / "idle" (a user
//     request is / no user request is in flight); EOF stops the worker.
//   worker -> launcher: one `path` line each time a path's state changes (format_warm_result),
//     "gate" once no critical path holds the gate, "bgdone\t<warmed>\t<total>\t<reason>",
//     "log\t<info|warn>\t<text>".
// Options: --auto (discover routes, warm the rest in the background), --bake (--prewarm: every
// route before the gate, the record written), --skip GLOB (repeatable), --learned PATH
// (repeatable, most requested first: paths learned from traffic), and the two above.
namespace knext {

inline constexpr std::string_view kWarmWorkerFlag = "--warm-worker";
// Worker argument: a request is let go as waiting only once the server has answered something.
inline constexpr std::string_view kWaitNeedsAnswerFlag = "--wait-needs-answer";
// Worker argument (--warm-gate=first): only the first critical path holds the gate; the others
// are warmed after it opens, before the background routes.
inline constexpr std::string_view kHoldFirstFlag = "--hold-first";
// Worker argument, repeatable: a path learned from traffic, most requested first.
inline constexpr std::string_view kLearnedFlag = "--learned";

// The header every warm-up request carries.
inline constexpr std::string_view kWarmupHeader = "x-knext-warmup: 1";

int run_warm_worker(const std::vector<std::string>& args);

std::string format_warm_result(const WarmPathStatus& status);
Expected<WarmPathStatus> parse_warm_result(std::string_view line);

}  // namespace knext
