#pragma once
// Directory operations relative to an open directory fd, never following a symlink: the cache
// directories are shared between launchers, so a path component swapped for a symlink between
// two calls must not redirect a copy or a delete.
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "common/fd.hpp"

namespace knext {

// strerror(err), for one-line reasons.
std::string errno_text(int err);
Error errno_error(const std::string& what, int err);

// "-<pid>-<16 random hex digits>", for names that must not collide between launchers: every
// launcher is PID 1 in its own container, so the pid alone would collide between pods sharing a
// volume.
std::string unique_suffix();

// Opens `name` under `dirfd` (AT_FDCWD for a path) as a directory; a symlink is refused (ELOOP).
Expected<Fd> open_dir_at(int dirfd, const std::string& name);

struct DirEntry {
  std::string name;
  unsigned char type;  // DT_*; DT_UNKNOWN on filesystems that do not fill it in
};
// Entries of `dir` without "." and ".."; consumes the fd.
Expected<std::vector<DirEntry>> list_dir(Fd dir);
// DT_UNKNOWN resolved with fstatat (no symlink following).
bool entry_is_dir(int dirfd, const DirEntry& entry);

// As root, hands a file we just made to `owner` (node's uid); otherwise it is ours already.
Status give_to(int fd, uid_t owner);

// Removes `name` under `dirfd` with everything below it. Entries that vanish meanwhile (another
// launcher cleaning the same tree) are not errors; neither is `name` being gone already.
Status remove_tree_at(int dirfd, const std::string& name);

// Copies the regular files and directories below `src` into `dst` (files 0600, directories
// 0700, owned by `owner` when we are root). Symlinks and special files are skipped.
Status copy_tree(int src, int dst, uid_t owner);

// The one walk over a tree: `visit(path relative to dir, its stat)` for every regular file below
// the open directory `dir`, at most `max_depth` directories down, never following a symlink.
// Entries that vanish or cannot be opened meanwhile are skipped.
using FileVisitor = std::function<void(const std::string& rel_path, const struct stat& st)>;
void for_each_file_at(int dir, int max_depth, const FileVisitor& visit);
// The same below the directory at `path` (which may itself be a symlink); nothing when it cannot
// be opened.
void for_each_file(const std::string& path, int max_depth, const FileVisitor& visit);

// Apparent size (st_size) of the regular files below `name`; vanished entries count as 0.
uint64_t tree_bytes_at(int dirfd, const std::string& name);

}  // namespace knext
