#include "bench/slowfs/passthrough.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <thread>

namespace knext::slowfs {
namespace {

constexpr double kCacheSeconds = 24 * 3600.0;  // the source does not change under the bench

Context& context() {
  return *static_cast<Context*>(fuse_get_context()->private_data);
}

// FUSE paths are absolute ("/", "/a/b"); the *at calls take them relative to the source.
const char* relative(const char* path) {
  return path[1] == '\0' ? "." : path + 1;
}

bool is_hidden(const char* path) {
  const auto& hidden = context().hidden;
  return !hidden.empty() && hidden == path;
}

int fail() {
  return -errno;
}

void* init(fuse_conn_info* conn, fuse_config* cfg) {
  // Data and metadata cached across opens and for a day: only an explicit eviction
  // (posix_fadvise DONTNEED) makes the next read go to the "disk" again.
  cfg->kernel_cache = 1;
  cfg->auto_cache = 0;
  cfg->entry_timeout = kCacheSeconds;
  cfg->attr_timeout = kCacheSeconds;
  cfg->negative_timeout = kCacheSeconds;
  cfg->use_ino = 1;
  auto& ctx = context();
  conn->max_background = ctx.max_background;
  conn->congestion_threshold = ctx.max_background * 3 / 4;
  return &ctx;
}

// By path even for an open file: the path is always there (nullpath_ok is off), and fi->fh
// would be a DIR* for a directory.
int getattr(const char* path, struct stat* st, fuse_file_info*) {
  if (is_hidden(path)) return -ENOENT;
  return fstatat(context().source.get(), relative(path), st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : fail();
}

int readlink(const char* path, char* buf, size_t size) {
  if (size == 0) return -EINVAL;
  ssize_t n = readlinkat(context().source.get(), relative(path), buf, size - 1);
  if (n < 0) return fail();
  buf[n] = '\0';
  return 0;
}

int access(const char* path, int mask) {
  if ((mask & W_OK) != 0) return -EROFS;
  return faccessat(context().source.get(), relative(path), mask, 0) == 0 ? 0 : fail();
}

int opendir(const char* path, fuse_file_info* fi) {
  Fd fd(openat(context().source.get(), relative(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return fail();
  DIR* dir = fdopendir(fd.get());
  if (dir == nullptr) return fail();
  fd.release();  // the DIR owns it now, closed in releasedir
  fi->fh = reinterpret_cast<uintptr_t>(dir);
  return 0;
}

int readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info* fi,
            fuse_readdir_flags) {
  auto* dir = reinterpret_cast<DIR*>(fi->fh);
  const auto& hidden = context().hidden;
  std::string prefix = path[1] == '\0' ? "/" : std::string(path) + "/";
  rewinddir(dir);
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) return errno == 0 ? 0 : fail();
    if (!hidden.empty() && prefix + entry->d_name == hidden) continue;
    struct stat st {};
    st.st_ino = entry->d_ino;
    st.st_mode = static_cast<mode_t>(entry->d_type) << 12;
    // Offset 0: the library collects the whole listing in one call.
    if (fill(buf, entry->d_name, &st, 0, fuse_fill_dir_flags{}) != 0) return 0;
  }
}

int releasedir(const char*, fuse_file_info* fi) {
  closedir(reinterpret_cast<DIR*>(fi->fh));
  return 0;
}

int open(const char* path, fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_CREAT)) != 0) {
    return -EROFS;
  }
  int fd = openat(context().source.get(), relative(path), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail();
  fi->fh = static_cast<uint64_t>(fd);  // closed in release
  fi->keep_cache = 1;
  return 0;
}

int read(const char*, char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  // The whole point: each request the kernel sends (a readahead window, a page fault of an
  // mmap) waits like one round trip to a slow disk. Requests run on separate loop threads,
  // so parallel ones overlap.
  std::this_thread::sleep_for(context().read_delay);
  size_t done = 0;
  while (done < size) {
    ssize_t n =
        pread(static_cast<int>(fi->fh), buf + done, size - done, offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail();
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<int>(done);
}

int release(const char*, fuse_file_info* fi) {
  close(static_cast<int>(fi->fh));
  return 0;
}

int statfs(const char*, struct statvfs* st) {
  return fstatvfs(context().source.get(), st) == 0 ? 0 : fail();
}

fuse_operations make_operations() {
  fuse_operations ops{};
  ops.init = init;
  ops.getattr = getattr;
  ops.readlink = readlink;
  ops.access = access;
  ops.opendir = opendir;
  ops.readdir = readdir;
  ops.releasedir = releasedir;
  ops.open = open;
  ops.read = read;
  ops.release = release;
  ops.statfs = statfs;
  // Mounted "ro", so the kernel refuses these itself; they are here for completeness.
  ops.mknod = [](const char*, mode_t, dev_t) { return -EROFS; };
  ops.mkdir = [](const char*, mode_t) { return -EROFS; };
  ops.unlink = [](const char*) { return -EROFS; };
  ops.rmdir = [](const char*) { return -EROFS; };
  ops.symlink = [](const char*, const char*) { return -EROFS; };
  ops.rename = [](const char*, const char*, unsigned) { return -EROFS; };
  ops.link = [](const char*, const char*) { return -EROFS; };
  ops.chmod = [](const char*, mode_t, fuse_file_info*) { return -EROFS; };
  ops.chown = [](const char*, uid_t, gid_t, fuse_file_info*) { return -EROFS; };
  ops.truncate = [](const char*, off_t, fuse_file_info*) { return -EROFS; };
  ops.write = [](const char*, const char*, size_t, off_t, fuse_file_info*) { return -EROFS; };
  ops.create = [](const char*, mode_t, fuse_file_info*) { return -EROFS; };
  ops.utimens = [](const char*, const timespec*, fuse_file_info*) { return -EROFS; };
  ops.setxattr = [](const char*, const char*, const char*, size_t, int) { return -EROFS; };
  ops.removexattr = [](const char*, const char*) { return -EROFS; };
  ops.fallocate = [](const char*, int, off_t, off_t, fuse_file_info*) { return -EROFS; };
  return ops;
}

}  // namespace

const fuse_operations& passthrough_operations() {
  static const fuse_operations ops = make_operations();
  return ops;
}

}  // namespace knext::slowfs
