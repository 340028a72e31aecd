#pragma once
// Whether a file's pages are in the kernel's page cache, and dropping them: for cold-start
// benchmarks (a cold page cache slows the first render) and to test the prewarm.
#include <cstddef>
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace knext {

struct EvictResult {
  size_t evicted = 0;       // files whose clean pages were dropped
  size_t failed = 0;        // could not be opened (gone, no permission)
  std::string first_error;  // one line, for the failed ones
};

// posix_fadvise(POSIX_FADV_DONTNEED) on each file: drops its clean cached pages. No root
// needed. Not dropped: dirty pages (a file just written: fsync it first), pages some process
// has mapped (the running node binary), and on tmpfs nothing at all (the cache is the file).
EvictResult evict_from_page_cache(const std::vector<std::string>& paths);

// Fraction of the file's pages in the page cache, 0..1 (an empty file is 1): mincore() on a
// mapping of it, which faults nothing in. Since Linux 5.0 mincore only reports cached pages
// of files the caller owns or may write (root may); for others it sees only mapped pages.
Expected<double> resident_fraction(const std::string& path);

}  // namespace knext
