#pragma once
// Node's mapped pages (cachewarm/mapped_pages.hpp) recorded on the cache volume by the first
// warm start of a build whose image has none from `--prewarm`: later cold starts of that build,
// on any node sharing the volume, then prewarm just those pages of the node binary.
#include <sys/types.h>
#include <uv.h>

#include <string>

namespace knext {

// <volume_dir>/knext-prewarm-pages.txt
std::string volume_pages_path(const std::string& volume_dir);

// On the thread pool, once node is warm: unless the app or the volume already has pages for
// `binary` (node's path as started), reads the child's mapped pages and writes them to the
// volume (temp file + rename). Logs one line when it wrote, one warning if it could not.
void record_pages_on_volume(uv_loop_t* loop, const std::string& volume_dir,
                            const std::string& app_dir, const std::string& binary, pid_t child);

}  // namespace knext
