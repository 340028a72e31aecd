#pragma once
#include <chrono>
#include <cstddef>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "probes/launch_state.hpp"

// The startup gate's decisions, without its effects: events from the hook, the warm-up worker,
// the port check, timers and the supervisor go in; commands for the executor (launcher/
// startup_gate.cpp) come out. Times are milliseconds since the launcher's exec, given by the
// caller, so every transition can be replayed in a test.
namespace knext::gate {

struct Settings {
  bool proxy = false;  // --gate=proxy (else handoff through the hook)
  int public_port = 0;
  int internal_port = 0;                // proxy: where the child listens on 127.0.0.1
  std::vector<std::string> warm_paths;  // the critical paths, as /startup lists them at first
  bool background_pending = false;      // --warm-path auto: other routes warm after the gate opens
  std::chrono::milliseconds warm_timeout{60'000};
  double deadline_ms = 0;  // warm-up ends by then (ms since exec)
  int warm_repeat = 8;
  bool exit_on_warm_fail = false;  // --warm-fail=exit
  std::chrono::milliseconds background_budget{30'000};
  bool open_after_flush = true;  // false under --prewarm: the flush ends the run, PORT stays shut
};

// Events.
struct Started {
  int child_pid = 0;
};
struct HookHello {
  int pid = 0;
  std::string node_version;
};
struct HookListening {
  std::string host;
  int port = 0;
  std::string public_host;
  bool redirected = false;
};
struct HookUngated {
  std::string message;
};
struct HookOpened {};
struct HookFlushed {
  bool ok = false;
  std::string message;
};
struct HookError {
  std::string message;
};
struct HookBusy {
  bool busy = false;
};
// The hook's word on Next's preloadEntriesOnStart (--next-preload=defer).
struct HookPreload {
  enum class State { kDeferred, kDone, kUnsupported };
  State state = State::kDeferred;
  int pages = 0;  // kDone: routes loaded
  int ms = 0;     // kDone: from the start of the deferred preload
  std::string message;
};
struct ChannelClosed {};
struct WarmPath {
  WarmPathStatus status;
};
struct WarmGateReleased {};  // no critical path holds the gate any more
struct BackgroundDone {
  size_t warmed = 0;
  size_t total = 0;
  std::string reason;
};
struct PortAccepted {};
struct PortCheckFailed {
  std::string error;
};
struct ProxyOpened {
  bool ok = false;
  std::string error;
  int port = 0;
};
struct FlushTimeout {};
struct Deadline {};
struct ChildExited {};
struct ShuttingDown {};

using Event = std::variant<Started, HookHello, HookListening, HookUngated, HookOpened, HookFlushed,
                           HookError, HookBusy, HookPreload, ChannelClosed, WarmPath,
                           WarmGateReleased, BackgroundDone, PortAccepted, PortCheckFailed,
                           ProxyOpened, FlushTimeout, Deadline, ChildExited, ShuttingDown>;

// Commands.
struct StartWarmup {
  std::string host;
  int port = 0;
  std::chrono::milliseconds time_left{0};
  int repeat = 0;
  int node_pid = 0;
};
struct CancelWarmup {};
struct SetBusy {
  bool busy = false;
};
// Connect to the public port until it accepts (PortAccepted) or report the first refusal.
struct CheckPort {
  std::string host;
  int port = 0;
};
struct StopPortCheck {};
struct StartDeadline {
  std::chrono::milliseconds after{0};
};
struct StopDeadline {};
// Send "flush" to the hook and start the timer whose end is FlushTimeout.
struct SendFlush {
  std::chrono::milliseconds wait{0};
};
struct StopFlushTimer {};
struct SendOpen {};
struct OpenProxy {
  int upstream_port = 0;
};
struct StartBackground {
  std::chrono::milliseconds budget{0};
  bool after_preload = false;  // Next's preload is deferred and not done: routes wait for it
};
struct WorkerPreloaded {};  // tell the worker Next's deferred preload is done
struct SendWatch {
  bool on = false;
};
struct SendPreload {};  // run the preload the hook held back
// Once background warming and the deferred preload are done, the hook flushes the caches again
// (once no user request is in flight), so the next start finds every route's code.
struct SendLateFlush {};
struct RequestShutdown {
  std::string reason;
  int exit_code = 0;
};
struct MarkPhase {
  std::string name;
  std::string detail;
};
enum class Level { kDebug, kInfo, kWarn };
struct Log {
  Level level = Level::kInfo;
  std::string text;
};
struct NotifyFlushed {};  // node's compile cache is on disk (or will not be)

using Command = std::variant<StartWarmup, CancelWarmup, SetBusy, CheckPort, StopPortCheck,
                             StartDeadline, StopDeadline, SendFlush, StopFlushTimer, SendOpen,
                             OpenProxy, StartBackground, SendWatch, SendPreload, SendLateFlush,
                             WorkerPreloaded, RequestShutdown, MarkPhase, Log, NotifyFlushed>;
using Commands = std::vector<Command>;

// The launcher's own exit code when it stops the app because warm-up failed (--warm-fail=exit)
// or the server never listened.
inline constexpr int kStartupFailedExit = 1;
inline constexpr std::chrono::milliseconds kFlushWait{2'000};

// One start of the app. What /startup and /metrics show of the gate is report(); the executor
// copies it into LaunchState after each event.
class StartupGateMachine {
 public:
  enum class Phase {
    kIdle,       // not started
    kListening,  // handoff: waiting for the hook to say where the server listens
    kWarming,    // the critical paths hold the gate
    kFlushing,   // asked node to flush its compile cache
    kOpening,    // told the hook or the proxy to open; waiting for the port to accept
    kOpen,       // the public port accepts
    kStopped,    // the child exited or the launcher is stopping it for a failed start
  };
  struct Report {
    bool gate_open = false;
    std::vector<WarmPathStatus> warm_paths;
    BackgroundWarm background;
    bool paths_changed = false;  // warm_paths changed since the executor last took them
  };

  explicit StartupGateMachine(Settings settings);

  Commands handle(const Event& event, double now_ms);

  Phase phase() const { return phase_; }
  const Report& report() const { return report_; }
  // The executor took report().warm_paths.
  void paths_published() { report_.paths_changed = false; }

 private:
  void on(const Started& e, double now_ms, Commands& out);
  void on(const HookHello& e, double now_ms, Commands& out);
  void on(const HookListening& e, double now_ms, Commands& out);
  void on(const HookUngated& e, double now_ms, Commands& out);
  void on(const HookOpened& e, double now_ms, Commands& out);
  void on(const HookFlushed& e, double now_ms, Commands& out);
  void on(const HookError& e, double now_ms, Commands& out);
  void on(const HookBusy& e, double now_ms, Commands& out);
  void on(const HookPreload& e, double now_ms, Commands& out);
  void on(const ChannelClosed& e, double now_ms, Commands& out);
  void on(const WarmPath& e, double now_ms, Commands& out);
  void on(const WarmGateReleased& e, double now_ms, Commands& out);
  void on(const BackgroundDone& e, double now_ms, Commands& out);
  void on(const PortAccepted& e, double now_ms, Commands& out);
  void on(const PortCheckFailed& e, double now_ms, Commands& out);
  void on(const ProxyOpened& e, double now_ms, Commands& out);
  void on(const FlushTimeout& e, double now_ms, Commands& out);
  void on(const Deadline& e, double now_ms, Commands& out);
  void on(const ChildExited& e, double now_ms, Commands& out);
  void on(const ShuttingDown& e, double now_ms, Commands& out);

  void advance(Phase next);  // phases only move forward
  void stop(RequestShutdown request, Commands& out);
  void begin_warmup(const std::string& host, int port, double now_ms, Commands& out);
  void warm_done(bool all_ok, Commands& out);
  void flush_then_open(Commands& out);
  void open_gate(Commands& out);
  void open_when_port_accepts(std::string detail, bool warmed, Commands& out);
  void start_background(double now_ms, Commands& out);
  void stop_for_no_listen(Commands& out);
  void start_preload(Commands& out);
  void late_flush_when_done(Commands& out);

  Settings settings_;
  Report report_;
  Phase phase_ = Phase::kIdle;
  int child_pid_ = 0;
  int node_pid_ = 0;  // from the hook's hello
  std::string public_host_;
  std::string last_hook_error_;
  bool child_running_ = false;
  bool shutting_down_ = false;
  bool listening_ = false;  // the server listens (or nothing is gated): no deadline any more
  bool listen_reported_ = false;
  bool ungated_ = false;
  bool warm_released_ = false;
  bool flush_sent_ = false;
  bool flushed_ = false;
  bool open_requested_ = false;
  bool background_started_ = false;
  bool background_done_ = false;  // ran and ended (not off)
  bool preload_deferred_ = false;
  bool preload_sent_ = false;
  bool preload_done_ = false;
  bool late_flush_sent_ = false;
  bool late_flushed_ = false;
  // A port check under way, and what gate-open will say when it succeeds.
  bool checking_port_ = false;
  std::string open_detail_;
  bool open_warmed_ = false;
};

}  // namespace knext::gate
