#include "launcher/pages_recording.hpp"

#include <fmt/format.h>

#include <filesystem>

#include "cachewarm/page_cache/mapped_pages_file.hpp"
#include "common/log.hpp"
#include "common/pool_job.hpp"

namespace knext {
namespace {

struct Recorded {
  bool wrote = false;
  std::string error;
  uint64_t bytes = 0;
  size_t files = 0;
};

Recorded record(const CachePlacement& placement, uid_t uid, const std::string& app_dir,
                const std::string& binary, pid_t child) {
  Recorded r;
  try {
    std::error_code ec;
    std::string real = std::filesystem::canonical(binary, ec).string();
    if (!recorded_pages_for(mapped_pages_path_for(app_dir), real).targets.empty() ||
        !volume_recorded_pages(placement, uid, real).targets.empty()) {
      return r;
    }
    auto build = open_volume_build(placement, uid);
    if (!build) {
      r.error = build.error().message;
      return r;
    }
    auto files = mapped_pages(child);
    Status written = files ? write_mapped_pages_at(build->get(), kVolumePagesName, *files, uid)
                           : Status(files.error());
    if (!written) {
      r.error = written.error().message;
      return r;
    }
    r.wrote = true;
    r.files = files->size();
    for (const auto& file : *files) r.bytes += total_bytes(file.ranges);
  } catch (const std::exception& e) {  // never onto a pool thread of PID 1
    r.error = e.what();
  }
  return r;
}

}  // namespace

RecordedPages volume_recorded_pages(const CachePlacement& placement, uid_t uid,
                                    const std::string& binary) {
  auto build = open_volume_build(placement, uid);
  if (!build) return {{}, build.error().message};
  return recorded_pages_in(read_mapped_pages_at(build->get(), kVolumePagesName, uid), binary);
}

void record_pages_on_volume(uv_loop_t* loop, const CachePlacement& placement, uid_t uid,
                            const std::string& app_dir, const std::string& binary, pid_t child) {
  if (placement.volume_dir.empty() || child <= 0) return;
  std::string path = placement.volume_dir + "/" + kVolumePagesName;
  PoolJob<Recorded>::queue(
      loop,
      [placement, uid, app_dir, binary, child] {
        return record(placement, uid, app_dir, binary, child);
      },
      [path](Recorded& r) {
        if (!r.error.empty()) {
          log::warn("node's pages not recorded on the volume: " + r.error);
        } else if (r.wrote) {
          log::info(
              fmt::format("node's pages recorded for the next cold start: {:.1f} MiB of {} "
                          "files in {}",
                          static_cast<double>(r.bytes) / (1 << 20), r.files, path));
        }
      });
}

}  // namespace knext
