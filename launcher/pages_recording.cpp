#include "launcher/pages_recording.hpp"

#include <fmt/format.h>

#include <filesystem>

#include "cachewarm/mapped_pages_file.hpp"
#include "launcher/log.hpp"
#include "launcher/pool_job.hpp"

namespace knext {
namespace {

struct Recorded {
  bool wrote = false;
  std::string error;
  uint64_t bytes = 0;
  size_t files = 0;
};

Recorded record(const std::string& path, const std::string& app_dir, const std::string& binary,
                pid_t child) {
  Recorded r;
  try {
    std::error_code ec;
    std::string real = std::filesystem::canonical(binary, ec).string();
    if (!recorded_pages_for(mapped_pages_path_for(app_dir), real).targets.empty() ||
        !recorded_pages_for(path, real).targets.empty()) {
      return r;
    }
    auto files = mapped_pages(child);
    Status written = files ? write_mapped_pages(path, *files) : Status(files.error());
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

std::string volume_pages_path(const std::string& volume_dir) {
  return volume_dir + "/knext-prewarm-pages.txt";
}

void record_pages_on_volume(uv_loop_t* loop, const std::string& volume_dir,
                            const std::string& app_dir, const std::string& binary, pid_t child) {
  if (volume_dir.empty() || child <= 0) return;
  std::string path = volume_pages_path(volume_dir);
  PoolJob<Recorded>::queue(
      loop, [path, app_dir, binary, child] { return record(path, app_dir, binary, child); },
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
