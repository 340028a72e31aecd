// Test helper: execs its arguments with SIGUSR2 blocked and SIGTSTP and SIGPIPE ignored, the
// state a careless parent could hand the launcher; the launcher's child must not inherit it.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  sigprocmask(SIG_BLOCK, &block, nullptr);
  signal(SIGTSTP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  execvp(argv[1], argv + 1);
  std::perror("exec");
  return 127;
}
