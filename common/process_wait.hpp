#pragma once
#include <chrono>
#include <thread>

#include "common/boost_process.hpp"

namespace knext {

// Waits for a Boost.Process child with a deadline by polling running(): Boost 1.81's
// wait_for() can miss the SIGCHLD and then sleeps out the whole timeout.
inline bool wait_with_timeout(boost::process::child& child, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (child.running()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace knext
