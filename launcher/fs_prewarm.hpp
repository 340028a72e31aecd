#pragma once
#include <sys/types.h>
#include <uv.h>

#include <memory>
#include <string>

#include "cachewarm/compile_cache/cache_placement.hpp"
#include "cachewarm/page_cache/page_cache_prewarm.hpp"
#include "common/timeline.hpp"
#include "launcher/launch_plan.hpp"

namespace knext {

// Page-cache prewarm of the files node reads for its first render, started right after the
// spawn (reading them before made cold starts slower in a trial). The list: the manifest that
// --prewarm recorded (first-use order), else Next's .nft.json traces when the server's own
// trace is there; else nothing (pages' traces alone gave no gain). Logs one line when done.
//
// The node binary itself gets a lane of its own: cold, it is the largest single cost (node
// faults in most of its binary while booting) and one sequential read runs ahead of those
// faults. On a fast disk the gain is small; on slow storage it is the point (numbers: README
// "Page-cache prewarm").
struct FsPrewarm {
  std::unique_ptr<PageCachePrewarm> files;
  std::unique_ptr<PageCachePrewarm> binary;
};
// `cache`: this build's directory on the cache volume (cache.volume_dir may be empty), where a
// first start records node's pages when the app has none (launcher/pages_recording.hpp); its
// files are trusted only when owned by `uid` (node's) or root.
FsPrewarm start_fs_prewarm(uv_loop_t* loop, const LaunchPlan& plan, const CachePlacement& cache,
                           uid_t uid, Timeline& timeline);

// Once node is warm: records its pages on the volume for the next cold start, if neither the app
// nor the volume has them (launcher/pages_recording.hpp). Nothing when the prewarm is off
// (plan.prewarm_fs).
void record_node_pages(uv_loop_t* loop, const LaunchPlan& plan, const CachePlacement& cache,
                       uid_t uid, pid_t child);

}  // namespace knext
