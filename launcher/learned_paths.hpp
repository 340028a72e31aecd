#pragma once
// --learn-paths: the launcher's side of the traffic record (probes/warm/traffic_record.hpp).
// Read once before the warm-up worker starts (its paths are handed to the worker as arguments);
// merged with what the hook reports and written back at the late flush and at shutdown. Every
// access goes through the volume's <build-id> directory fd, opened and checked by
// cache_placement; nothing is read or written by path.
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/fd.hpp"
#include "launcher/compile_cache_setup.hpp"
#include "probes/warm/route_discovery.hpp"

namespace knext {

class LearnedPaths {
 public:
  // nullptr when the compile cache is not on the volume.
  static std::unique_ptr<LearnedPaths> open(const CompileCacheSetup& cache,
                                            const std::string& app_dir);
  LearnedPaths(const CompileCacheSetup& cache, std::string app_dir);  // use open()

  // The record's concrete paths, most requested route first; empty on a miss.
  const std::vector<std::string>& paths() const { return paths_; }

  // Maps the hook's counts onto the build's routes and adds them to the record on the volume
  // (read again through the fd, merged, replaced atomically). Logs one line; never fails the run.
  void save(const std::vector<std::pair<std::string, long long>>& counts);

 private:
  bool ensure_dir();

  CompileCacheSetup cache_;
  std::string app_dir_;
  uid_t uid_ = 0;
  Fd build_dir_;
  std::optional<RouteDiscovery> routes_;
  std::vector<std::string> paths_;
};

}  // namespace knext
