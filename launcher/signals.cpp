#include "launcher/signals.hpp"

#include <csignal>
#include <cstring>

namespace knext {

const std::vector<int>& forwarded_signals() {
  static const std::vector<int> kSignals = [] {
    std::vector<int> s = {SIGHUP,  SIGINT,   SIGQUIT, SIGUSR1, SIGUSR2,  SIGALRM,
                          SIGTERM, SIGCONT,  SIGURG,  SIGXCPU, SIGXFSZ,  SIGVTALRM,
                          SIGPROF, SIGWINCH, SIGIO,   SIGPWR,  SIGSTKFLT};
    for (int rt = SIGRTMIN; rt <= SIGRTMAX; ++rt) s.push_back(rt);
    return s;
  }();
  return kSignals;
}

namespace {
void set_handled_signals_blocked(bool blocked) {
  sigset_t set;
  sigemptyset(&set);
  for (int signum : forwarded_signals()) sigaddset(&set, signum);
  sigaddset(&set, SIGCHLD);
  pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
}
}  // namespace

void block_handled_signals() {
  set_handled_signals_blocked(true);
}

void unblock_handled_signals() {
  set_handled_signals_blocked(false);
}

bool is_shutdown_signal(int signum) {
  return signum == SIGTERM || signum == SIGINT;
}

std::string signal_name(int signum) {
  const char* abbrev = sigabbrev_np(signum);
  if (abbrev != nullptr) return std::string("SIG") + abbrev;
  if (signum >= SIGRTMIN && signum <= SIGRTMAX) {
    return "SIGRTMIN+" + std::to_string(signum - SIGRTMIN);
  }
  return "signal " + std::to_string(signum);
}

}  // namespace knext
