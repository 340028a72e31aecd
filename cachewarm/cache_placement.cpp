#include "cachewarm/cache_placement.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "cachewarm/build_id.hpp"
#include "cachewarm/dir_ops.hpp"
#include "cachewarm/dir_trust.hpp"

namespace knext {
namespace {

std::string join(std::string base, const std::string& name) {
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  return base == "/" ? base + name : base + "/" + name;
}

Error at(const std::string& path, const Error& error) {
  return Error{path + ": " + error.message, error.code};
}

// <cache_dir>/<app>/<build-id>, created as needed, checked, probed and marked as just used.
// The value: whether it is empty.
Expected<bool> open_volume(const CacheOptions& options, const CachePlacement& p) {
  auto root = open_dir_at(AT_FDCWD, options.cache_dir);
  if (!root) return at(options.cache_dir, root.error());
  if (auto s = check_trusted(root->get(), TrustLevel::kVolumeRoot, options.app_uid); !s) {
    return at(options.cache_dir, s.error());
  }
  std::string app_path = join(options.cache_dir, p.app);
  auto app = open_private_dir(root->get(), p.app, options.app_uid);
  if (!app) return at(app_path, app.error());
  std::string build_path = join(app_path, p.build_id);
  auto build = open_private_dir(app->get(), p.build_id, options.app_uid);
  if (!build) return at(build_path, build.error());
  if (auto s = probe_writable(build->get()); !s) return at(build_path, s.error());
  futimens(build->get(), nullptr);  // least recently used goes first in evict_old_builds
  auto entries = list_dir(std::move(*build));
  if (!entries) return at(build_path, entries.error());
  return entries->empty();
}

// <cache_seed>/<app>/<build-id>, trusted at every level and holding a node cache directory for
// app_uid (node's directory names end in -<uid>; a seed baked as another user is useless).
Expected<Fd> open_seed(const CacheOptions& options, const CachePlacement& p) {
  std::string path = options.cache_seed;
  auto trusted = [&](const Expected<Fd>& dir) -> Status {
    if (!dir) return at(path, dir.error());
    if (auto s = check_trusted(dir->get(), TrustLevel::kSeed, options.app_uid); !s) {
      return at(path, s.error());
    }
    return ok_status();
  };
  auto dir = open_dir_at(AT_FDCWD, path);
  for (const std::string* name : {&p.app, &p.build_id}) {
    if (auto s = trusted(dir); !s) return s.error();
    path = join(path, *name);
    dir = open_dir_at(dir->get(), *name);
  }
  if (auto s = trusted(dir); !s) return s.error();
  int fd = dir->get();
  auto entries = list_dir(Fd(fcntl(fd, F_DUPFD_CLOEXEC, 0)));
  if (!entries) return at(path, entries.error());
  std::string suffix("-");  // not "-" + to_string(): GCC 12 -Wrestrict false positive (PR 105329)
  suffix += std::to_string(options.app_uid);
  for (const auto& entry : *entries) {
    const std::string& name = entry.name;
    if (name.size() > suffix.size() && name.ends_with(suffix) && entry_is_dir(fd, entry)) {
      return dir;
    }
  }
  return Error{path + ": has no cache for uid " + std::to_string(options.app_uid)};
}

Expected<std::string> open_tmp(const CacheOptions& options) {
  std::string root_path = options.tmp_dir;
  if (root_path.empty()) {
    const char* env = std::getenv("TMPDIR");
    root_path = env != nullptr && env[0] == '/' ? env : "/tmp";
  }
  auto root = open_dir_at(AT_FDCWD, root_path);
  if (!root) return at(root_path, root.error());
  // Same rule as the volume root: /tmp is 1777, a world-writable one without the sticky bit is not.
  if (auto s = check_trusted(root->get(), TrustLevel::kVolumeRoot, options.app_uid); !s) {
    return at(root_path, s.error());
  }
  std::string name = "knext-compile-cache-" + std::to_string(options.app_uid);
  std::string path = join(root_path, name);
  auto dir = open_private_dir(root->get(), name, options.app_uid);
  if (!dir) return at(path, dir.error());
  if (auto s = probe_writable(dir->get()); !s) return at(path, s.error());
  return path;
}

std::string with_refusals(std::string reason, const std::vector<std::string>& refused) {
  for (size_t i = 0; i < refused.size(); ++i) reason += (i == 0 ? "; refused " : "; ") + refused[i];
  return reason;
}

}  // namespace

const char* cache_source_name(CacheSource source) {
  switch (source) {
    case CacheSource::kVolume:
      return "volume";
    case CacheSource::kSeedReadOnly:
      return "seed";
    case CacheSource::kTmp:
      return "tmp";
    case CacheSource::kNone:
      break;
  }
  return "none";
}

std::string cache_app_name(const CacheOptions& options) {
  std::string name = options.app_name;
  if (name.empty()) {
    std::string dir = options.app_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    size_t slash = dir.rfind('/');
    name = slash == std::string::npos ? dir : dir.substr(slash + 1);
  }
  if (name.size() > 128) name.resize(128);
  for (char& c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) c = '_';
  }
  if (!name.empty() && name[0] == '.') name[0] = '_';
  return name.empty() ? "app" : name;
}

CachePlacement place_compile_cache(const CacheOptions& options) {
  CachePlacement p;
  p.app = cache_app_name(options);
  p.build_id = read_build_id(options.app_dir);
  std::vector<std::string> refused;

  bool volume_ok = false;
  bool volume_empty = false;
  if (!options.cache_dir.empty()) {
    if (auto volume = open_volume(options, p)) {
      volume_ok = true;
      volume_empty = *volume;
      p.volume_dir = join(join(options.cache_dir, p.app), p.build_id);
    } else {
      refused.push_back("volume " + volume.error().message);
    }
  }
  // A volume that already has this build needs nothing from the seed: skip its syscalls.
  if (!options.cache_seed.empty() && (!volume_ok || volume_empty)) {
    if (auto seed = open_seed(options, p)) {
      p.seed_dir = join(join(options.cache_seed, p.app), p.build_id);
    } else {
      refused.push_back("seed " + seed.error().message);
    }
  }

  if (volume_ok && (!volume_empty || p.seed_dir.empty())) {
    p.dir = p.volume_dir;
    p.source = CacheSource::kVolume;
    p.reason = with_refusals(volume_empty ? "volume, no cache for build " + p.build_id + " yet"
                                          : "volume, has build " + p.build_id,
                             refused);
    return p;
  }
  if (!p.seed_dir.empty()) {
    p.dir = p.seed_dir;
    p.source = CacheSource::kSeedReadOnly;
    p.seeded_from_seed = volume_ok;
    p.reason = with_refusals(
        volume_ok ? "seed, read-only while it is copied into the empty volume" : "seed, read-only",
        refused);
    return p;
  }
  auto tmp = open_tmp(options);
  if (tmp) {
    p.dir = *tmp;
    p.source = CacheSource::kTmp;
    p.reason = with_refusals("tmp, lost when the container stops", refused);
    return p;
  }
  refused.push_back("tmp " + tmp.error().message);
  p.reason = with_refusals("none, node runs without a compile cache", refused);
  return p;
}

Status seed_volume(const CachePlacement& placement, const CacheOptions& options) {
  if (!placement.seeded_from_seed) return ok_status();
  // Everything is checked again: this runs later, on another thread, and the volume is shared.
  auto root = open_dir_at(AT_FDCWD, options.cache_dir);
  if (!root) return at(options.cache_dir, root.error());
  if (auto s = check_trusted(root->get(), TrustLevel::kVolumeRoot, options.app_uid); !s) {
    return at(options.cache_dir, s.error());
  }
  std::string app_path = join(options.cache_dir, placement.app);
  auto app = open_private_dir(root->get(), placement.app, options.app_uid);
  if (!app) return at(app_path, app.error());
  auto seed = open_seed(options, placement);
  if (!seed) return seed.error();

  std::string tmp_name = ".tmp-" + placement.build_id + unique_suffix();
  std::string tmp_path = join(app_path, tmp_name);
  auto tmp = open_private_dir(app->get(), tmp_name, options.app_uid);
  if (!tmp) return at(tmp_path, tmp.error());

  Status copied = copy_tree(seed->get(), tmp->get(), options.app_uid);
  // A temp copy that cannot be removed is cleaned up by a later evict_old_builds.
  if (!copied) {
    (void)remove_tree_at(app->get(), tmp_name);
    return Error{"copy " + placement.seed_dir + " to " + tmp_path + ": " + copied.error().message,
                 copied.error().code};
  }
  // Replaces the empty <build-id> place_compile_cache made; fails if it has content by now.
  if (renameat(app->get(), tmp_name.c_str(), app->get(), placement.build_id.c_str()) == 0) {
    return ok_status();
  }
  int err = errno;
  (void)remove_tree_at(app->get(), tmp_name);
  if (err == ENOTEMPTY || err == EEXIST) return ok_status();  // another launcher seeded it
  return errno_error("rename " + tmp_path + " to " + placement.volume_dir, err);
}

}  // namespace knext
