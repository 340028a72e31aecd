// Test helper: prints "ready", then one line "got SIGxxx" per signal received; exits 0 on
// SIGTERM/SIGINT. Used to prove which signals the launcher forwards, and to whom.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

int main() {
  sigset_t all;
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  sigprocmask(SIG_BLOCK, &all, nullptr);
  std::printf("ready %d\n", static_cast<int>(getpid()));
  std::fflush(stdout);
  for (;;) {
    siginfo_t info{};
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig == SIGCHLD) continue;
    const char* name = sigabbrev_np(sig);
    if (name != nullptr) {
      std::printf("got SIG%s\n", name);
    } else {
      std::printf("got SIGRTMIN+%d\n", sig - SIGRTMIN);
    }
    std::fflush(stdout);
    if (sig == SIGTERM || sig == SIGINT) return 0;
  }
}
