#include "cachewarm/compile_cache/cache_placement.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "cachewarm/build_id.hpp"
#include "cachewarm/compile_cache/app_name.hpp"
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

struct Volume {
  Fd app;
  Fd build;
  bool empty = false;
};

// <cache_dir>/<app>/<build-id>, created as needed, checked, probed and marked as just used.
Expected<Volume> open_volume(const CacheOptions& options, const CachePlacement& p) {
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
  auto entries = list_dir(Fd(fcntl(build->get(), F_DUPFD_CLOEXEC, 0)));
  if (!entries) return at(build_path, entries.error());
  return Volume{std::move(*app), std::move(*build), entries->empty()};
}

// /proc/self/fd/<fd>: the same directory in node, which inherits the fd at the same number,
// whatever is renamed meanwhile. Checked here, since without /proc the path leads nowhere.
Expected<std::string> fd_path(int fd) {
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  struct stat via_proc {};
  struct stat held {};
  if (stat(path.c_str(), &via_proc) != 0 || fstat(fd, &held) != 0 ||
      via_proc.st_dev != held.st_dev || via_proc.st_ino != held.st_ino) {
    return Error{path + " does not lead to the checked directory (is /proc mounted?)"};
  }
  return path;
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

struct TmpDir {
  Fd fd;
  std::string path;
};

Expected<TmpDir> open_tmp(const CacheOptions& options) {
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
  return TmpDir{std::move(*dir), path};
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
  if (name.empty()) name = default_app_name(options.app_dir);
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
  auto dirs = std::make_shared<CacheDirs>();
  std::vector<std::string> refused;

  Fd volume_build;
  bool volume_empty = false;
  if (!options.cache_dir.empty()) {
    if (auto volume = open_volume(options, p)) {
      dirs->volume_app = std::move(volume->app);
      volume_build = std::move(volume->build);
      volume_empty = volume->empty;
      p.volume_dir = join(join(options.cache_dir, p.app), p.build_id);
    } else {
      refused.push_back("volume " + volume.error().message);
    }
  }
  bool volume_ok = volume_build.valid();
  // A volume that already has this build needs nothing from the seed: skip its syscalls.
  if (!options.cache_seed.empty() && (!volume_ok || volume_empty)) {
    if (auto seed = open_seed(options, p)) {
      dirs->seed = std::move(*seed);
      p.seed_dir = join(join(options.cache_seed, p.app), p.build_id);
    } else {
      refused.push_back("seed " + seed.error().message);
    }
  }

  // Node gets the fd's /proc path; a directory that cannot be named so is refused like any other.
  auto use = [&](Fd fd, std::string path, CacheSource source, std::string reason) {
    auto named = fd_path(fd.get());
    if (!named) {
      refused.push_back(cache_source_name(source) + std::string(" ") + named.error().message);
      return false;
    }
    p.dir = std::move(*named);
    p.path = std::move(path);
    p.source = source;
    p.reason = with_refusals(std::move(reason), refused);
    dirs->node_dir = std::move(fd);
    return true;
  };
  auto dup = [](const Fd& fd) { return Fd(fcntl(fd.get(), F_DUPFD_CLOEXEC, 0)); };
  bool placed = false;
  if (volume_ok && (!volume_empty || p.seed_dir.empty())) {
    placed =
        use(std::move(volume_build), p.volume_dir, CacheSource::kVolume,
            volume_empty ? "no cache for build " + p.build_id + " yet" : "has build " + p.build_id);
  } else if (!p.seed_dir.empty()) {
    p.seeded_from_seed = volume_ok;
    placed = use(dup(dirs->seed), p.seed_dir, CacheSource::kSeedReadOnly,
                 volume_ok ? "read-only while it is copied into the empty volume" : "read-only");
  }
  if (!placed) {
    p.seeded_from_seed = false;
    if (auto tmp = open_tmp(options)) {
      placed =
          use(std::move(tmp->fd), tmp->path, CacheSource::kTmp, "lost when the container stops");
    } else {
      refused.push_back("tmp " + tmp.error().message);
    }
  }
  if (!placed) {
    p.source = CacheSource::kNone;
    p.reason = with_refusals("none, node runs without a compile cache", refused);
  }
  p.dirs = std::move(dirs);
  return p;
}

Expected<Fd> open_volume_build(const CachePlacement& placement, uid_t uid) {
  if (!placement.dirs || !placement.dirs->volume_app.valid()) return Error{"no volume", ENOENT};
  auto build = open_dir_at(placement.dirs->volume_app.get(), placement.build_id);
  if (!build) return at(placement.volume_dir, build.error());
  if (auto s = check_trusted(build->get(), TrustLevel::kPrivate, uid); !s) {
    return at(placement.volume_dir, s.error());
  }
  return build;
}

Status seed_volume(const CachePlacement& placement, const CacheOptions& options) {
  if (!placement.seeded_from_seed || !placement.dirs) return ok_status();
  const CacheDirs& dirs = *placement.dirs;
  std::string app_path = join(options.cache_dir, placement.app);
  int app = dirs.volume_app.get();
  std::string tmp_name = ".tmp-" + placement.build_id + unique_suffix();
  std::string tmp_path = join(app_path, tmp_name);
  auto tmp = open_private_dir(app, tmp_name, options.app_uid);
  if (!tmp) return at(tmp_path, tmp.error());

  Status copied = copy_tree(dirs.seed.get(), tmp->get(), options.app_uid);
  // A temp copy that cannot be removed is cleaned up by a later evict_old_builds.
  if (!copied) {
    (void)remove_tree_at(app, tmp_name);
    return Error{"copy " + placement.seed_dir + " to " + tmp_path + ": " + copied.error().message,
                 copied.error().code};
  }
  // Replaces the empty <build-id> place_compile_cache made; fails if it has content by now.
  if (renameat(app, tmp_name.c_str(), app, placement.build_id.c_str()) == 0) {
    return ok_status();
  }
  int err = errno;
  (void)remove_tree_at(app, tmp_name);
  if (err == ENOTEMPTY || err == EEXIST) return ok_status();  // another launcher seeded it
  return errno_error("rename " + tmp_path + " to " + placement.volume_dir, err);
}

}  // namespace knext
