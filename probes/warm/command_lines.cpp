#include "probes/warm/command_lines.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace knext {

CommandLines::CommandLines(int fd) : fd_(fd) {
  int ends[2];
  if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) == 0) {
    wake_read_.reset(ends[0]);
    wake_write_.reset(ends[1]);
  }
}

std::optional<std::string> CommandLines::next() {
  for (;;) {
    if (stopped_) return std::nullopt;
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (ended_) return std::nullopt;
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    bool wakeable = wake_read_.valid();
    int rc = poll(fds, wakeable ? 2 : 1, wakeable ? -1 : 50);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0 || stopped_) {
      ended_ = true;
      return std::nullopt;
    }
    if (rc == 0) continue;
    char chunk[512];
    ssize_t n = read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ended_ = true;  // a last line without '\n' is not a whole command
      return std::nullopt;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

void CommandLines::stop() {
  stopped_ = true;
  char one = 1;
  if (wake_write_.valid()) (void)!write(wake_write_.get(), &one, 1);
}

}  // namespace knext
