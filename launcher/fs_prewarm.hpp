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
std::unique_ptr<PageCachePrewarm> start_fs_prewarm(uv_loop_t* loop, const Config& config,
                                                   Timeline& timeline);

}  // namespace knext
