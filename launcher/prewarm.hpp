#pragma once
#include "common/timeline.hpp"
#include "launcher/config.hpp"
#include "launcher/launch_plan.hpp"

namespace knext {

// `knext-launch --prewarm --cache-seed DIR`: the image-build step. Starts the app exactly as
// production will (same paths: V8 keys entries by filename), warms it, lets node flush its
// compile cache into DIR (same layout as a volume), stops it, then starts it once more to check
// the cache loads without a single entry being compiled again. Prints one summary line.
int run_prewarm(const Config& config, const LaunchInputs& inputs, Timeline& timeline);

}  // namespace knext
