#pragma once
#include <string>
#include <vector>

namespace knext {

// Signals the launcher passes on to the child. Not here: KILL and STOP (uncatchable), CHLD
// (reaping), the synchronous faults (SEGV BUS FPE ILL TRAP ABRT SYS), PIPE (the launcher's own
// sockets raise it) and the tty job-control stops (TSTP TTIN TTOU), which act on the group.
const std::vector<int>& forwarded_signals();

// PID 1 has no default action: a signal arriving before its handler exists is dropped. Blocked
// instead, it stays pending until the handlers are installed and the mask is set free again.
void block_handled_signals();
void unblock_handled_signals();

bool is_shutdown_signal(int signum);  // TERM and INT start the grace period
std::string signal_name(int signum);

}  // namespace knext
