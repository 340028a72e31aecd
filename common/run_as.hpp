#pragma once
// `--user NAME|UID[:GID]`: the user node and the warm-up worker run as. Resolved once, before any
// fork (getpwnam and getgrouplist use NSS, which a forked child of a threaded process must not).
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace knext {

struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, as initgroups would set them
  std::string name;           // for log lines: the user's name, or the number given
};

// NAME, or UID with an optional :GID (a uid without a passwd entry keeps gid = uid unless :GID
// is given, and no supplementary groups). One-line errors.
Expected<RunAs> resolve_user(std::string_view spec);

// Whether the launcher, running as `current_uid`, may start the app as `user` (nullopt: as
// itself): --user needs root to switch to anyone else; --refuse-root refuses uid 0. One line.
Status app_user_allowed(const std::optional<RunAs>& user, bool refuse_root, uid_t current_uid);

// In the forked child, before exec: setgroups, setgid, setuid (real, effective and saved), so no
// capability survives. Only syscalls: async-signal-safe. 0, or the errno.
int drop_privileges(const RunAs& who);

}  // namespace knext
