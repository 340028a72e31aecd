#pragma once
// The bench's slow-storage scenario: the app and node served through knext-slowfs, a read-only
// FUSE passthrough that adds a fixed delay to every read request. Files read once stay in the
// page cache (until evicted), so a cold start pays the delay and a warm one does not, as on a
// container layer or network volume slower than this machine's disk.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace knext::bench {

struct SlowStorageOptions {
  std::chrono::microseconds read_delay{0};
  // Files and directories the mount must expose (absolute). The passthrough's source is
  // `source_root` when set, else the deepest directory that holds them all.
  std::vector<std::string> paths;
  std::string source_root;
  std::string slowfs_bin;  // empty: knext-slowfs beside /proc/self/exe
  std::chrono::milliseconds mount_timeout{5000};
};

// A live knext-slowfs mount at a fresh temporary mountpoint. Destruction unmounts it (lazily if
// something still has files open), stops the daemon and removes the mountpoint: stop every
// process running from the mount first.
class SlowStorage {
 public:
  // Errors: FUSE unavailable (the daemon's reason, with its errno text), knext-slowfs missing,
  // a path outside `source_root`, the mount not live within `mount_timeout`.
  static Expected<SlowStorage> mount(const SlowStorageOptions& options);

  SlowStorage(SlowStorage&&) noexcept;
  SlowStorage& operator=(SlowStorage&&) noexcept;
  ~SlowStorage();

  // `absolute_path` as seen through the mount; a path outside the source comes back unchanged.
  std::string map(const std::string& absolute_path) const;
  const std::string& source() const;
  const std::string& mountpoint() const;

 private:
  struct State;
  explicit SlowStorage(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Whether `path` is a mount point in this mount namespace (/proc/self/mountinfo).
bool is_mounted(const std::string& path);

}  // namespace knext::bench
