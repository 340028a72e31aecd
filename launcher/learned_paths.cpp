#include "launcher/learned_paths.hpp"

#include <fmt/format.h>

#include <cerrno>

#include "cachewarm/volume_file.hpp"
#include "common/log.hpp"
#include "probes/warm/traffic_record.hpp"

namespace knext {
namespace {

const std::string kName(kTrafficRecordName);

// The record of this build in `dir`: nullopt when there is none yet; an error for anything
// else (unreadable, untrusted, oversized, damaged, another build's).
Expected<std::optional<TrafficRecord>> read_record(int dir, uid_t uid,
                                                   const std::string& build_id) {
  auto text = read_trusted_file_at(dir, kName, kMaxTrafficRecord, uid);
  if (!text) {
    if (text.error().code == ENOENT) return std::optional<TrafficRecord>();
    return text.error();
  }
  auto record = parse_traffic_record(*text);
  if (!record) return record.error();
  if (record->build_id != build_id) {
    return Error{"traffic record: of build " + record->build_id + ", not " + build_id, EINVAL};
  }
  return std::optional<TrafficRecord>(std::move(*record));
}

}  // namespace

LearnedPaths::LearnedPaths(const CompileCacheSetup& cache, std::string app_dir)
    : cache_(cache), app_dir_(std::move(app_dir)), uid_(cache.options.app_uid) {}

std::unique_ptr<LearnedPaths> LearnedPaths::open(const CompileCacheSetup& cache,
                                                 const std::string& app_dir) {
  if (cache.placement.volume_dir.empty()) return nullptr;
  auto learned = std::make_unique<LearnedPaths>(cache, app_dir);
  if (!learned->ensure_dir()) return learned;
  auto record = read_record(learned->build_dir_.get(), learned->uid_, cache.placement.build_id);
  if (!record) {
    log::info("learned paths: record ignored (" + record.error().message + ")");
  } else if (*record) {
    learned->paths_ = learned_paths(**record);
    if (!learned->paths_.empty()) {
      log::info(fmt::format("learned paths: {} route(s) from traffic, most requested {}",
                            learned->paths_.size(), learned->paths_.front()));
    }
  }
  return learned;
}

// The volume's build directory, checked again (a seed copy may have been renamed onto it).
bool LearnedPaths::ensure_dir() {
  if (build_dir_.valid()) return true;
  auto dir = open_volume_build(cache_.placement, uid_);
  if (!dir) {
    log::debug("learned paths: no volume build directory yet: " + dir.error().message);
    return false;
  }
  build_dir_ = std::move(*dir);
  return true;
}

void LearnedPaths::save(const std::vector<std::pair<std::string, long long>>& counts) {
  if (counts.empty()) return;
  if (!ensure_dir()) {
    log::info("learned paths: not saved, the volume's build directory is not usable");
    return;
  }
  if (!routes_) {
    auto found = discover_routes(app_dir_);
    if (!found) {
      log::info("learned paths: not saved, routes unknown: " + found.error().message);
      return;
    }
    routes_ = std::move(*found);
  }
  std::vector<std::pair<std::string, uint64_t>> paths;
  for (const auto& [path, n] : counts) paths.emplace_back(path, static_cast<uint64_t>(n));
  const std::string& build_id = cache_.placement.build_id;
  TrafficRecord fresh = tally_traffic(paths, routes_->patterns, routes_->urls.base_path, build_id);
  if (fresh.routes.empty()) return;
  TrafficRecord merged{build_id, {}};
  if (auto before = read_record(build_dir_.get(), uid_, build_id); !before) {
    log::info("learned paths: replacing the record (" + before.error().message + ")");
  } else if (*before) {
    merged = std::move(**before);
  }
  merge_traffic(merged, fresh);
  if (auto written =
          write_file_atomically_at(build_dir_.get(), kName, format_traffic_record(merged), uid_);
      !written) {
    log::info("learned paths: not saved: " + written.error().message);
    return;
  }
  log::info(fmt::format("learned paths: saved {} route(s), most requested {}", merged.routes.size(),
                        merged.routes.front().top_path));
}

}  // namespace knext
