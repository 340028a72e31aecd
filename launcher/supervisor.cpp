#include "launcher/supervisor.hpp"

#include <fmt/format.h>
#include <signal.h>

#include "common/clock.hpp"
#include "common/exit_status.hpp"
#include "common/log.hpp"
#include "launcher/leftovers.hpp"
#include "launcher/signals.hpp"

namespace knext {
namespace {
// After SIGKILL to leftovers, the most we wait for the kernel to let us reap them.
constexpr std::chrono::milliseconds kAfterKillWait{1'000};
constexpr uint64_t kLeftoverPollMs = 20;
}  // namespace

Supervisor::Supervisor(uv_loop_t* loop, SupervisorOptions options, Timeline& timeline)
    : loop_(loop),
      options_(options),
      timeline_(timeline),
      grace_timer_(loop),
      leftover_timer_(loop),
      leftover_poll_(loop),
      restart_timer_(loop) {}

Status Supervisor::start(const SpawnRequest& request) {
  std::vector<int> signals = forwarded_signals();
  signals.push_back(SIGCHLD);
  signal_handles_.reserve(signals.size());
  for (int signum : signals) {
    auto& handle = signal_handles_.emplace_back();
    if (int rc = uv_signal_init(loop_, handle.get()); rc != 0) {
      log::warn(fmt::format("cannot handle {} ({}); it will not be forwarded", signal_name(signum),
                            uv_strerror(rc)));
      continue;
    }
    handle.mark_initialized();
    handle.get()->data = this;
    auto callback = [](uv_signal_t* h, int sig) {
      auto* self = static_cast<Supervisor*>(h->data);
      if (sig == SIGCHLD) {
        self->on_sigchld();
      } else {
        self->on_signal(sig);
      }
    };
    if (uv_signal_start(handle.get(), callback, signum) != 0) {
      log::debug(fmt::format("cannot handle {}; it will not be forwarded", signal_name(signum)));
    }
  }
  // The launcher writes to sockets; a peer hanging up must not kill PID 1.
  ::signal(SIGPIPE, SIG_IGN);
  // Blocked since main: what arrived before the handlers existed is delivered now and handled
  // once the loop runs.
  unblock_handled_signals();

  auto pid = spawn_child(request);
  if (!pid) {
    return Error{pid.error().message, exit_code_from_spawn_errno(pid.error().code)};
  }
  child_ = *pid;
  timeline_.mark("child-spawned", fmt::format("pid {}: {}", child_, request.argv.front()));
  return ok_status();
}

Status Supervisor::restart(const SpawnRequest& request) {
  child_status_.reset();
  grace_expired_ = false;
  killing_leftovers_ = false;
  auto pid = spawn_child(request);
  if (!pid) {
    int code = exit_code_from_spawn_errno(pid.error().code);
    log::error(fmt::format("restart: {} (exit {})", pid.error().message, code));
    exit_override_ = code;
    finish();
    return Error{pid.error().message, code};
  }
  child_ = *pid;
  timeline_.mark("child-spawned",
                 fmt::format("pid {}: {} (restart)", child_, request.argv.front()));
  return ok_status();
}

int Supervisor::wait() {
  // A child that exited before the loop started is reaped here.
  on_sigchld();
  // Reaped already: finish() called uv_stop outside the loop, and the flag it left would make
  // the loop's teardown skip the close callbacks (every handle leaked). This run only clears it.
  uv_run(loop_, done_ ? UV_RUN_NOWAIT : UV_RUN_DEFAULT);
  if (exit_override_) return *exit_override_;
  return child_status_ ? exit_code_from_wait_status(*child_status_) : 1;
}

void Supervisor::request_stop(const std::string& reason, int exit_code) {
  exit_override_ = exit_code;
  log::info(reason);
  on_signal(SIGTERM);
}

void Supervisor::request_shutdown(const std::string& reason, int exit_code) {
  exit_override_ = exit_code;
  log::error(reason);
  on_signal(SIGTERM);
}

int Supervisor::send_to_child(int signum) {
  if (child_ <= 0) return -1;
  // With --signal-group the whole group gets it, which still works after the leader is gone.
  if (options_.signal_group) return kill(-child_, signum);
  if (child_status_) return -1;
  return kill(child_, signum);
}

void Supervisor::on_signal(int signum) {
  if (!child_status_) {
    log::debug(fmt::format("forwarding {} to pid {}", signal_name(signum), child_));
    send_to_child(signum);
  } else {
    // The main child is gone; what is left gets the signal instead.
    signal_leftovers(options_.role, signum);
  }
  if (!is_shutdown_signal(signum) || shutdown_started_) return;
  shutdown_started_ = SteadyClock::now();
  if (on_shutdown_) on_shutdown_();
  if (restart_timer_.active()) {
    restart_timer_.stop();
    log::info(
        fmt::format("{} while waiting to restart the app: not restarting; exiting with its "
                    "last status {}",
                    signal_name(signum), exit_code_from_wait_status(*child_status_)));
    finish();
    return;
  }
  if (child_status_) {
    if (!done_ && !has_children()) finish();  // e.g. a restart that could not be prepared
    return;
  }
  timeline_.mark("shutdown", fmt::format("{} forwarded; grace {}ms", signal_name(signum),
                                         options_.grace.count()));
  grace_timer_.start(static_cast<uint64_t>(options_.grace.count()), 0,
                     [this] { on_grace_expired(); });
}

void Supervisor::on_grace_expired() {
  grace_expired_ = true;
  if (child_status_) return;
  log::warn(fmt::format("child pid {} still running after the {}ms grace; sending SIGKILL", child_,
                        options_.grace.count()));
  if (options_.signal_group) {
    kill(-child_, SIGKILL);
  } else {
    kill(child_, SIGKILL);
  }
}

void Supervisor::on_sigchld() {
  reap_exited([this](pid_t pid, int status) {
    if (pid == child_) {
      on_child_exit(status);
    } else {
      log::debug(fmt::format("reaped pid {} ({})", pid, describe_wait_status(status)));
    }
  });
  if (child_status_) check_leftovers();
}

void Supervisor::on_child_exit(int wait_status) {
  child_status_ = wait_status;
  grace_timer_.stop();
  timeline_.mark("child-exited", describe_wait_status(wait_status));
  if (on_child_exit_) on_child_exit_(wait_status);
  if (!has_children()) return;
  // Anything still alive is a leftover of the child: give it TERM, then KILL after a budget.
  auto budget = leftover_budget();
  if (budget.count() == 0) {
    kill_leftovers();
    return;
  }
  int n = signal_leftovers(options_.role, SIGTERM);
  log::info(fmt::format("child left processes behind; sent SIGTERM ({}), SIGKILL in {}ms",
                        n > 0 ? "ok" : "none reachable", budget.count()));
  leftover_timer_.start(static_cast<uint64_t>(budget.count()), 0, [this] { kill_leftovers(); });
  leftover_poll_.start(kLeftoverPollMs, kLeftoverPollMs, [this] {
    // Grandchildren reparented to us after their parent died also get the signal.
    signal_leftovers(options_.role, killing_leftovers_ ? SIGKILL : SIGTERM);
    on_sigchld();
  });
}

std::chrono::milliseconds Supervisor::leftover_budget() const {
  auto budget = options_.leftover_grace;
  if (shutdown_started_) {
    auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() -
                                                                       *shutdown_started_);
    budget = std::min(budget, std::max(options_.grace - spent, std::chrono::milliseconds(0)));
  }
  if (grace_expired_) budget = std::chrono::milliseconds(0);
  return budget;
}

void Supervisor::kill_leftovers() {
  if (done_) return;
  if (killing_leftovers_) {
    log::warn("leftover processes could not be reaped after SIGKILL; going on anyway");
    all_gone();
    return;
  }
  killing_leftovers_ = true;
  signal_leftovers(options_.role, SIGKILL);
  log::warn("leftover processes still running; sent SIGKILL");
  leftover_timer_.start(static_cast<uint64_t>(kAfterKillWait.count()), 0,
                        [this] { kill_leftovers(); });
  if (!leftover_poll_.active()) {
    leftover_poll_.start(kLeftoverPollMs, kLeftoverPollMs, [this] {
      signal_leftovers(options_.role, SIGKILL);
      on_sigchld();
    });
  }
}

void Supervisor::check_leftovers() {
  if (!done_ && !restart_timer_.active() && !has_children()) all_gone();
}

void Supervisor::all_gone() {
  leftover_timer_.stop();
  leftover_poll_.stop();
  if (!shutdown_started_ && decide_restart_ && child_status_) {
    if (auto delay = decide_restart_(*child_status_)) {
      restart_timer_.start(static_cast<uint64_t>(delay->count()), 0, [this] {
        if (on_restart_) on_restart_();
      });
      return;
    }
  }
  finish();
}

void Supervisor::finish() {
  done_ = true;
  grace_timer_.stop();
  leftover_timer_.stop();
  leftover_poll_.stop();
  uv_stop(loop_);
}

}  // namespace knext
