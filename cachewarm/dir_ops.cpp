#include "cachewarm/dir_ops.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace knext {
namespace {

// The cache is two levels deep (<build>/<node tag>/<entry>); anything far deeper is not ours.
constexpr int kMaxDepth = 16;

struct DirCloser {
  void operator()(DIR* dir) const { closedir(dir); }
};
using DirStream = std::unique_ptr<DIR, DirCloser>;

Fd dup_fd(int fd) {
  return Fd(fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

bool is_dir_entry(int dirfd, const DirEntry& entry, struct stat* st) {
  if (entry.type != DT_UNKNOWN) return entry.type == DT_DIR;
  return fstatat(dirfd, entry.name.c_str(), st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st->st_mode);
}

Status copy_bytes(int in, int out) {
  bool fallback = false;
  while (!fallback) {
    ssize_t n = copy_file_range(in, nullptr, out, nullptr, 1 << 20, 0);
    if (n == 0) return ok_status();
    if (n > 0) continue;
    if (errno == EINTR) continue;
    // Cross-filesystem copies (image layer to volume) are not supported on every kernel.
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
      return errno_error("copy", errno);
    }
    fallback = true;
  }
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = read(in, buf, sizeof(buf));
    if (n == 0) return ok_status();
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("read", errno);
    }
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(out, buf + done, static_cast<size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        return errno_error("write", errno);
      }
      done += w;
    }
  }
}

Status copy_file(int src_dir, int dst_dir, const std::string& name, uid_t owner) {
  // O_NONBLOCK: a FIFO where a file was expected must not hang the copy.
  Fd in(openat(src_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!in.valid()) return errno == ELOOP ? ok_status() : errno_error(name, errno);
  struct stat st {};
  if (fstat(in.get(), &st) != 0) return errno_error(name, errno);
  if (!S_ISREG(st.st_mode)) return ok_status();
  Fd out(openat(dst_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out.valid()) return errno_error(name, errno);
  if (auto s = give_to(out.get(), owner); !s) return Error{name + ": " + s.error().message};
  if (auto s = copy_bytes(in.get(), out.get()); !s) {
    return Error{name + ": " + s.error().message, s.error().code};
  }
  // Network filesystems may report a full disk only when the file is closed.
  if (close(out.release()) != 0) return errno_error(name, errno);
  return ok_status();
}

Status copy_tree_depth(int src, int dst, uid_t owner, int depth) {
  if (depth > kMaxDepth) return Error{"directory tree too deep"};
  auto entries = list_dir(dup_fd(src));
  if (!entries) return entries.error();
  for (const auto& entry : *entries) {
    struct stat st {};
    if (!is_dir_entry(src, entry, &st)) {
      if (entry.type != DT_UNKNOWN && entry.type != DT_REG) continue;
      if (auto s = copy_file(src, dst, entry.name, owner); !s) return s;
      continue;
    }
    if (mkdirat(dst, entry.name.c_str(), 0700) != 0) return errno_error(entry.name, errno);
    auto out = open_dir_at(dst, entry.name);
    if (!out) return Error{entry.name + ": " + out.error().message, out.error().code};
    if (auto s = give_to(out->get(), owner); !s)
      return Error{entry.name + ": " + s.error().message};
    auto in = open_dir_at(src, entry.name);
    if (!in) return Error{entry.name + ": " + in.error().message, in.error().code};
    if (auto s = copy_tree_depth(in->get(), out->get(), owner, depth + 1); !s) {
      return Error{entry.name + "/" + s.error().message, s.error().code};
    }
  }
  return ok_status();
}

Status remove_tree_depth(int dirfd, const std::string& name, int depth) {
  if (unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return ok_status();
  if (errno != EISDIR && errno != EPERM) return errno_error(name, errno);
  if (depth > kMaxDepth) return Error{name + ": directory tree too deep"};
  auto dir = open_dir_at(dirfd, name);
  if (!dir) {
    if (dir.error().code == ENOENT) return ok_status();
    return Error{name + ": " + dir.error().message, dir.error().code};
  }
  auto entries = list_dir(dup_fd(dir->get()));
  if (!entries) return Error{name + ": " + entries.error().message, entries.error().code};
  for (const auto& entry : *entries) {
    if (auto s = remove_tree_depth(dir->get(), entry.name, depth + 1); !s) {
      return Error{name + "/" + s.error().message, s.error().code};
    }
  }
  if (unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT) return ok_status();
  return errno_error(name, errno);
}

void walk_files(int dir, const std::string& prefix, int depth, int max_depth,
                const FileVisitor& visit) {
  auto entries = list_dir(dup_fd(dir));
  if (!entries) return;
  for (const auto& entry : *entries) {
    struct stat st {};
    if (fstatat(dir, entry.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    std::string rel = prefix + entry.name;
    if (S_ISREG(st.st_mode)) {
      visit(rel, st);
    } else if (S_ISDIR(st.st_mode) && depth < max_depth) {
      if (auto sub = open_dir_at(dir, entry.name)) {
        walk_files(sub->get(), rel + "/", depth + 1, max_depth, visit);
      }
    }
  }
}

}  // namespace

std::string errno_text(int err) {
  if (err == ELOOP) return "is a symlink";
  return std::strerror(err);
}

Error errno_error(const std::string& what, int err) {
  return Error{what + ": " + errno_text(err), err};
}

std::string unique_suffix() {
  unsigned long long nonce = 0;
  if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce)) {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    nonce =
        static_cast<unsigned long long>(now.tv_nsec) ^ static_cast<unsigned long long>(now.tv_sec);
  }
  char out[48];
  std::snprintf(out, sizeof(out), "-%d-%016llx", getpid(), nonce);
  return out;
}

Expected<Fd> open_dir_at(int dirfd, const std::string& name) {
  Fd fd(openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.valid()) return fd;
  int err = errno;
  struct stat st {};
  // With O_DIRECTORY a symlink fails as ENOTDIR; say what it is.
  if (err == ENOTDIR && fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISLNK(st.st_mode)) {
    err = ELOOP;
  }
  return Error{errno_text(err), err};
}

Expected<std::vector<DirEntry>> list_dir(Fd dir) {
  if (!dir.valid()) return Error{errno_text(EBADF), EBADF};
  DirStream stream(fdopendir(dir.get()));
  if (!stream) return Error{errno_text(errno), errno};
  dir.release();            // the stream owns it now
  rewinddir(stream.get());  // the fd may be a dup whose shared offset was moved
  std::vector<DirEntry> out;
  for (;;) {
    errno = 0;
    dirent* entry = readdir(stream.get());
    if (entry == nullptr) break;
    if (std::strcmp(entry->d_name, ".") == 0 || std::strcmp(entry->d_name, "..") == 0) continue;
    out.push_back({entry->d_name, entry->d_type});
  }
  if (errno != 0) return Error{errno_text(errno), errno};
  return out;
}

bool entry_is_dir(int dirfd, const DirEntry& entry) {
  struct stat st {};
  return is_dir_entry(dirfd, entry, &st);
}

Status give_to(int fd, uid_t owner) {
  if (geteuid() != 0 || owner == 0) return ok_status();
  if (fchown(fd, owner, static_cast<gid_t>(-1)) != 0) return errno_error("chown", errno);
  return ok_status();
}

Status remove_tree_at(int dirfd, const std::string& name) {
  return remove_tree_depth(dirfd, name, 0);
}

Status copy_tree(int src, int dst, uid_t owner) {
  return copy_tree_depth(src, dst, owner, 0);
}

void for_each_file_at(int dir, int max_depth, const FileVisitor& visit) {
  walk_files(dir, "", 0, max_depth, visit);
}

void for_each_file(const std::string& path, int max_depth, const FileVisitor& visit) {
  Fd dir(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) for_each_file_at(dir.get(), max_depth, visit);
}

uint64_t tree_bytes_at(int dirfd, const std::string& name) {
  struct stat st {};
  if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return 0;
  if (S_ISREG(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  if (!S_ISDIR(st.st_mode)) return 0;
  auto dir = open_dir_at(dirfd, name);
  if (!dir) return 0;
  uint64_t total = 0;
  for_each_file_at(dir->get(), kMaxDepth,
                   [&](const std::string&, const struct stat& file) { total += file.st_size; });
  return total;
}

}  // namespace knext
