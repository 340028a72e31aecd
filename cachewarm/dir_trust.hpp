#pragma once
// Whether a directory may hold compile-cache code that node will load and run: whoever can
// write there can make the app execute what they like, so only the app's user (and root) may.
#include <sys/types.h>

#include <string>

#include "common/expected.hpp"
#include "common/fd.hpp"

namespace knext {

enum class TrustLevel {
  // The --cache-dir mount point. Owned by root or the app's user. Group-writable is accepted
  // (Kubernetes fsGroup volumes are root:<fsGroup> 2775); world-writable only with the sticky
  // bit, as on /tmp: without it anyone could rename our <app> directory away and put theirs in.
  kVolumeRoot,
  // Directories we create and use: owned by the app's user, rwx for it, no write for anyone else.
  kPrivate,
  // The image-baked seed: owned by root or the app's user, no write for anyone else. It may be
  // read-only.
  kSeed,
};

// Checks an open directory; the error is one line without the path.
Status check_trusted(int dir_fd, TrustLevel level, uid_t uid);

// Opens `name` under `parent` (creating it 0700 if missing, owned by `uid` when we are root)
// and checks it as kPrivate. Symlinks are refused.
Expected<Fd> open_private_dir(int parent, const std::string& name, uid_t uid);

// Creates a file in `dir`, writes a byte, closes and removes it: catches read-only mounts
// (EROFS), full disks (ENOSPC, EDQUOT) and missing permission (EACCES) before node meets them.
Status probe_writable(int dir_fd);

}  // namespace knext
