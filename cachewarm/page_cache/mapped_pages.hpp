#pragma once
// Which pages of which files a running process has mapped: the part of the node binary (and its
// shared libraries) that booting and a first render really touch. Cold, node faults its binary
// in through the device's read-around, reading far more of it than it maps; warming just the
// mapped pages right after the spawn cuts the cold first response (README "Page-cache
// prewarm").
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cachewarm/page_cache/page_cache_prewarm.hpp"
#include "common/expected.hpp"

namespace knext {

struct MappedFile {
  std::string path;
  // What the file was when recorded: a prewarm of another file's offsets would be noise.
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::vector<ByteRange> ranges;  // sorted, merged, page-aligned
};

// From /proc/<pid>/maps and /proc/<pid>/pagemap (present bits only, so no privilege beyond
// being allowed to ptrace-read the process): every regular file mapped, with the ranges whose
// pages are in the process's page tables. Deleted and non-file mappings are left out.
Expected<std::vector<MappedFile>> mapped_pages(pid_t pid);

// Whether `file` still has the size and mtime it was recorded with.
bool unchanged_since_recorded(const MappedFile& file);

uint64_t total_bytes(const std::vector<ByteRange>& ranges);

}  // namespace knext
