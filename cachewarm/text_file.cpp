#include "cachewarm/text_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "cachewarm/dir_ops.hpp"
#include "common/fd.hpp"

namespace knext {

Expected<std::string> read_text_file(const std::string& path, size_t limit) {
  Fd fd(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return errno_error(path, errno);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return errno_error(path, errno);
  if (!S_ISREG(st.st_mode)) return Error{path + ": not a regular file", EINVAL};
  return read_open_file(fd.get(), path, limit);
}

Expected<std::string> read_open_file(int fd, const std::string& what, size_t limit) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return errno_error(what, errno);
  if (static_cast<uint64_t>(st.st_size) > limit) return errno_error(what, EFBIG);
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  // The file may grow while we read: read one byte past the limit to notice.
  for (;;) {
    if (got == out.size()) {
      if (out.size() > limit) return errno_error(what, EFBIG);
      out.resize(out.size() + 4096);
    }
    ssize_t n = read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(what, errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > limit) return errno_error(what, EFBIG);
  out.resize(got);
  return out;
}

Status write_file_atomically(const std::string& path, std::string_view contents, mode_t mode) {
  std::string tmp = path + ".tmp-XXXXXX";
  Fd fd(mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd.valid()) return errno_error(tmp, errno);
  auto fail = [&](int err) {
    unlink(tmp.c_str());
    return errno_error(path, err);
  };
  if (fchmod(fd.get(), mode) != 0) return fail(errno);
  for (size_t done = 0; done < contents.size();) {
    ssize_t n = write(fd.get(), contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno);
    done += static_cast<size_t>(n);
  }
  if (fsync(fd.get()) != 0) return fail(errno);
  // Network filesystems may report a full disk only on close.
  if (close(fd.release()) != 0) return fail(errno);
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail(errno);
  return ok_status();
}

std::string_view take_line(std::string_view& text) {
  size_t nl = text.find('\n');
  std::string_view line = text.substr(0, nl);
  text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace knext
