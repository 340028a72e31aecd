#pragma once
// Whole-file reads and atomic replacement for the prewarm's small text files (the manifest,
// Next's traces and route manifests).
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace knext {

// The whole file, or an error: unreadable, not a regular file, or more than `limit` bytes
// (code EFBIG). A FIFO in its place does not block the caller.
Expected<std::string> read_text_file(const std::string& path, size_t limit);
// The rest of an open regular file, with the same limit; `what` names it in errors.
Expected<std::string> read_open_file(int fd, const std::string& what, size_t limit);

// Removes the first line from `text` and returns it, without its '\n' (nor a '\r' before it).
std::string_view take_line(std::string_view& text);

// Writes `contents` to a temp file next to `path` (same directory, so the rename is atomic),
// fsyncs it and renames it over `path`: readers see the old file or the new one, never part of
// one. The temp file is removed on failure.
Status write_file_atomically(const std::string& path, std::string_view contents,
                             mode_t mode = 0644);

}  // namespace knext
