#include "cachewarm/dir_trust.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "cachewarm/dir_ops.hpp"

namespace knext {
namespace {

Status write_probe(Fd fd) {
  const char byte = 0;
  ssize_t n;
  do n = write(fd.get(), &byte, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1) return errno_error("probe write", n < 0 ? errno : EIO);
  // Network filesystems may report a full disk only on close.
  if (close(fd.release()) != 0) return errno_error("probe close", errno);
  return ok_status();
}

}  // namespace

Status check_trusted(int dir_fd, TrustLevel level, uid_t uid) {
  struct stat st {};
  if (fstat(dir_fd, &st) != 0) return errno_error("stat", errno);
  if (!S_ISDIR(st.st_mode)) return Error{"is not a directory", ENOTDIR};
  bool root_or_us = st.st_uid == uid || st.st_uid == 0;
  bool others_write = (st.st_mode & S_IWOTH) != 0;
  bool group_write = (st.st_mode & S_IWGRP) != 0;
  auto owned_by = [&] { return "is owned by uid " + std::to_string(st.st_uid); };
  switch (level) {
    case TrustLevel::kVolumeRoot:
      if (!root_or_us) return Error{owned_by() + ", not root or " + std::to_string(uid)};
      if (others_write && (st.st_mode & S_ISVTX) == 0) {
        return Error{"is world-writable without the sticky bit"};
      }
      break;
    case TrustLevel::kPrivate:
      if (st.st_uid != uid) return Error{owned_by() + ", not " + std::to_string(uid)};
      if (group_write || others_write) return Error{"is writable by group or others"};
      if ((st.st_mode & S_IRWXU) != S_IRWXU) return Error{"is not rwx for its owner"};
      break;
    case TrustLevel::kSeed:
      if (!root_or_us) return Error{owned_by() + ", not root or " + std::to_string(uid)};
      if (group_write || others_write) return Error{"is writable by group or others"};
      break;
  }
  return ok_status();
}

Expected<Fd> open_private_dir(int parent, const std::string& name, uid_t uid) {
  bool created = mkdirat(parent, name.c_str(), 0700) == 0;
  if (!created && errno != EEXIST) return errno_error("mkdir", errno);
  auto fd = open_dir_at(parent, name);
  if (!fd) return fd.error();
  if (created) {
    if (auto given = give_to(fd->get(), uid); !given) return given.error();
  }
  if (auto trusted = check_trusted(fd->get(), TrustLevel::kPrivate, uid); !trusted) {
    return trusted.error();
  }
  return fd;
}

Status probe_writable(int dir_fd) {
  // An unnamed file leaves nothing behind and cannot collide with another launcher's probe.
  Fd tmp(openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));
  if (tmp.valid()) return write_probe(std::move(tmp));
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return errno_error("probe create", errno);
  }
  // Filesystems without O_TMPFILE (NFS): a named file.
  std::string name = ".knext-probe" + unique_suffix();
  Fd named(
      openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!named.valid()) return errno_error("probe create", errno);
  Status written = write_probe(std::move(named));
  unlinkat(dir_fd, name.c_str(), 0);
  return written;
}

}  // namespace knext
