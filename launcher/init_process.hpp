#pragma once
#include <sys/types.h>

#include <functional>

// What makes the launcher a correct init: reaping everything, and being the ancestor that
// orphans are handed to even when it is not PID 1.
namespace knext {

enum class InitRole { kPid1, kSubreaper, kPlainParent };
// Registers as child subreaper unless PID 1; never fails the start (falls back to plain parent).
InitRole become_init();

// Reaps every exited child without blocking; calls on_reaped for each.
void reap_exited(const std::function<void(pid_t pid, int wait_status)>& on_reaped);

// True while any child (and so, for an init, any descendant) is alive or unreaped.
bool has_children();

}  // namespace knext
