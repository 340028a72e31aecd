#pragma once
#include <uv.h>

#include <memory>

#include "cachewarm/page_cache_prewarm.hpp"
#include "launcher/config.hpp"
#include "launcher/timeline.hpp"

namespace knext {

// Page-cache prewarm of the files node reads for its first render, started right after the
// spawn (reading them before made cold starts slower in a trial). The list: the manifest that
// --prewarm recorded (first-use order), else Next's .nft.json traces when the server's own
// trace is there; else nothing (pages' traces alone measured no gain). Logs one line when done.
//
// The node binary itself gets a lane of its own: cold, it is the largest single cost (node
// faults in ~97 of its 121 MiB while booting) and one sequential read runs ahead of those
// faults. On this machine's fast disk the gain is small (cold first response 467 against 480 ms,
// medians of 9 alternating runs); on slow storage it is the point.
struct FsPrewarm {
  std::unique_ptr<PageCachePrewarm> files;
  std::unique_ptr<PageCachePrewarm> binary;
};
FsPrewarm start_fs_prewarm(uv_loop_t* loop, const Config& config, Timeline& timeline);

}  // namespace knext
