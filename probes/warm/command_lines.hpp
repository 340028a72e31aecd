#pragma once
#include <atomic>
#include <optional>
#include <string>

#include "common/fd.hpp"

namespace knext {

// Reads the launcher's command lines from one fd (the worker's stdin) so that another thread
// can stop the read: a thread blocked in read() on a pipe cannot be woken otherwise, and a
// reader left behind at exit would touch state that no longer exists.
class CommandLines {
 public:
  explicit CommandLines(int fd);
  // The next line without its '\n'; nullopt at EOF, on a read error or once stop() was called.
  std::optional<std::string> next();
  // Makes every next() from now on return nullopt, including one blocked in another thread.
  void stop();

 private:
  int fd_;
  Fd wake_read_;
  Fd wake_write_;
  std::atomic<bool> stopped_{false};  // also seen without the wake pipe (none could be made)
  std::string buffer_;
  bool ended_ = false;
};

}  // namespace knext
