#pragma once
// Node's mapped pages (cachewarm/page_cache/mapped_pages.hpp) recorded on the cache volume by the
// first warm start of a build whose image has none from `--prewarm`: later cold starts of that
// build, on any node sharing the volume, then prewarm just those pages of the node binary.
#include <sys/types.h>
#include <uv.h>

#include <string>

#include "cachewarm/compile_cache/cache_placement.hpp"
#include "cachewarm/page_cache/mapped_pages_file.hpp"

namespace knext {

// The pages file's name in the volume's <build-id> directory.
inline constexpr const char* kVolumePagesName = "knext-prewarm-pages.txt";

// The pages recorded on the volume, read through the held <app> fd (a trusted file of `uid`).
RecordedPages volume_recorded_pages(const CachePlacement& placement, uid_t uid,
                                    const std::string& binary);

// On the thread pool, once node is warm: unless the app or the volume already has pages for
// `binary` (node's path as started), reads the child's mapped pages and writes them to the
// volume (temp file + rename, through the held <app> fd, owned by `uid`). Logs one line when
// it wrote, one warning if it could not.
void record_pages_on_volume(uv_loop_t* loop, const CachePlacement& placement, uid_t uid,
                            const std::string& app_dir, const std::string& binary, pid_t child);

}  // namespace knext
