#include "cachewarm/compile_cache/cache_eviction.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "cachewarm/build_id.hpp"
#include "cachewarm/dir_ops.hpp"

namespace knext {
namespace {

// A seed copy takes seconds; a .tmp-* directory untouched this long lost its launcher.
constexpr std::chrono::seconds kAbandonedAfter = std::chrono::minutes(10);

struct Build {
  std::string name;
  timespec mtime;
  uint64_t bytes;
};

bool older_than(const struct stat& st, std::chrono::seconds age) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return st.st_mtim.tv_sec + age.count() <= now.tv_sec;
}

bool before(const timespec& a, const timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec < b.tv_sec : a.tv_nsec < b.tv_nsec;
}

Fd dup_fd(int fd) {
  return Fd(fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

size_t sweep_temp_files(int dir, std::chrono::seconds min_age, bool descend) {
  auto entries = list_dir(dup_fd(dir));
  if (!entries) return 0;
  size_t removed = 0;
  for (const auto& entry : *entries) {
    if (is_node_temp_name(entry.name)) {
      struct stat st {};
      if (fstatat(dir, entry.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
          st.st_size == 0 && older_than(st, min_age) && unlinkat(dir, entry.name.c_str(), 0) == 0) {
        ++removed;
      }
    } else if (descend && entry_is_dir(dir, entry)) {
      if (auto sub = open_dir_at(dir, entry.name))
        removed += sweep_temp_files(sub->get(), min_age, false);
    }
  }
  return removed;
}

}  // namespace

EvictionReport evict_old_builds(const std::string& app_cache_dir, const std::string& keep_build_id,
                                uint64_t max_bytes) {
  auto dir = open_dir_at(AT_FDCWD, app_cache_dir);
  if (!dir) {
    EvictionReport report;
    report.error = app_cache_dir + ": " + dir.error().message;
    return report;
  }
  auto report = evict_old_builds_at(dir->get(), keep_build_id, max_bytes);
  if (!report.error.empty()) report.error = app_cache_dir + ": " + report.error;
  return report;
}

EvictionReport evict_old_builds_at(int fd, const std::string& keep_build_id, uint64_t max_bytes) {
  EvictionReport report;
  auto entries = list_dir(dup_fd(fd));
  if (!entries) {
    report.error = entries.error().message;
    return report;
  }
  std::vector<Build> builds;
  for (const auto& entry : *entries) {
    struct stat st {};
    if (fstatat(fd, entry.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
      continue;
    }
    if (entry.name.starts_with(".tmp-")) {
      if (older_than(st, kAbandonedAfter) && remove_tree_at(fd, entry.name)) {
        ++report.abandoned_copies_removed;
      }
      continue;
    }
    if (!valid_build_id(entry.name)) continue;
    builds.push_back({entry.name, st.st_mtim, tree_bytes_at(fd, entry.name)});
    report.bytes_before += builds.back().bytes;
  }
  std::sort(builds.begin(), builds.end(), [](const Build& a, const Build& b) {
    return before(a.mtime, b.mtime) || (!before(b.mtime, a.mtime) && a.name < b.name);
  });

  uint64_t total = report.bytes_before;
  for (const auto& build : builds) {
    if (total <= max_bytes) break;
    if (build.name == keep_build_id) continue;
    std::string victim = ".tmp-evict-" + build.name + unique_suffix();
    if (renameat(fd, build.name.c_str(), fd, victim.c_str()) != 0) {
      if (errno == ENOENT) total -= build.bytes;  // another launcher evicted it
      continue;
    }
    // A failure leaves a .tmp-evict-* directory that a later run removes as abandoned.
    (void)remove_tree_at(fd, victim);
    total -= build.bytes;
    report.removed.push_back(build.name);
  }
  report.bytes_after = total;
  return report;
}

Status touch_build_dir(const std::string& build_dir) {
  if (utimensat(AT_FDCWD, build_dir.c_str(), nullptr, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno_error(build_dir, errno);
  }
  return ok_status();
}

bool is_node_temp_name(std::string_view name) {
  if (name.size() != 15 || name[8] != '.') return false;
  for (size_t i = 0; i < 8; ++i) {
    char c = name[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  for (size_t i = 9; i < 15; ++i) {
    char c = name[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  }
  return true;
}

size_t remove_stale_temp_files(const std::string& dir, std::chrono::seconds min_age) {
  auto fd = open_dir_at(AT_FDCWD, dir);
  if (!fd) return 0;
  return sweep_temp_files(fd->get(), min_age, true);
}

size_t remove_stale_temp_files_at(int dir_fd, std::chrono::seconds min_age) {
  return sweep_temp_files(dir_fd, min_age, true);
}

}  // namespace knext
