#include "cachewarm/volume_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "cachewarm/dir_ops.hpp"
#include "cachewarm/text_file.hpp"
#include "common/fd.hpp"

namespace knext {

Expected<std::string> read_trusted_file_at(int dirfd, const std::string& name, size_t limit,
                                           uid_t uid) {
  Fd fd(openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return errno_error(name, errno);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return errno_error(name, errno);
  if (!S_ISREG(st.st_mode)) return Error{name + ": not a regular file", EINVAL};
  if (st.st_uid != uid && st.st_uid != 0) {
    return Error{name + ": is owned by uid " + std::to_string(st.st_uid), EPERM};
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Error{name + ": is writable by group or others", EPERM};
  }
  return read_open_file(fd.get(), name, limit);
}

Status write_file_atomically_at(int dirfd, const std::string& name, std::string_view contents,
                                uid_t owner) {
  std::string tmp = "." + name + ".tmp" + unique_suffix();
  Fd fd(openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return errno_error(tmp, errno);
  auto fail = [&](const std::string& what, int err) {
    unlinkat(dirfd, tmp.c_str(), 0);
    return errno_error(what, err);
  };
  if (auto given = give_to(fd.get(), owner); !given) return fail(name, given.error().code);
  for (size_t done = 0; done < contents.size();) {
    ssize_t n = write(fd.get(), contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(name, errno);
    done += static_cast<size_t>(n);
  }
  if (fsync(fd.get()) != 0) return fail(name, errno);
  // Network filesystems may report a full disk only on close.
  if (close(fd.release()) != 0) return fail(name, errno);
  if (renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) return fail(name, errno);
  return ok_status();
}

}  // namespace knext
