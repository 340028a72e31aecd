#pragma once
#include <string>
#include <vector>

#include "bench/stop_on_signal.hpp"
#include "common/expected.hpp"

namespace knext::bench {

// The page-cache manifest (and node's recorded pages) an image build bakes with
// `knext-launch --prewarm`, so that the "as shipped" variant is measured as it ships. If the
// app has no manifest, both are baked for the bench's duration (the compile-cache seed goes to
// `seed_dir`) and removed at the end; what the app already has is used and left alone.
class BakedManifest {
 public:
  static Expected<BakedManifest> bake(const std::string& app_dir,
                                      const std::vector<std::string>& command,
                                      const std::vector<std::string>& warm_paths,
                                      const std::string& seed_dir);
  BakedManifest(BakedManifest&& other) noexcept;
  BakedManifest& operator=(BakedManifest&&) = delete;
  BakedManifest(const BakedManifest&) = delete;
  ~BakedManifest();

  bool baked_here() const { return !app_dir_.empty(); }

 private:
  explicit BakedManifest(std::string app_dir);
  std::string app_dir_;   // set when this bench baked: what --prewarm wrote there is removed
  OnStopSignal on_stop_;  // ... also when the bench is stopped by a signal
};

}  // namespace knext::bench
