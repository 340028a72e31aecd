#pragma once
// Single files on the cache volume, always relative to a directory fd that was checked
// (dir_trust.hpp) and is still held: a path component swapped for a symlink after the check
// cannot redirect a read or a write.
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace knext {

// `name` in `dirfd`: opened without following a symlink and without blocking on a FIFO, then
// checked on the open file: a regular file owned by `uid` or root, not writable by group or
// others, at most `limit` bytes. Anything else is an error (ENOENT when it is not there).
Expected<std::string> read_trusted_file_at(int dirfd, const std::string& name, size_t limit,
                                           uid_t uid);

// Writes `contents` to a new temp file in `dirfd` (O_EXCL|O_NOFOLLOW, 0600, owned by `owner`),
// fsyncs it and renames it onto `name` in the same directory. The temp file is removed on
// failure.
Status write_file_atomically_at(int dirfd, const std::string& name, std::string_view contents,
                                uid_t owner);

}  // namespace knext
