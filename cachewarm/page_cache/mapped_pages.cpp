#include "cachewarm/page_cache/mapped_pages.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "common/fd.hpp"

namespace knext {
namespace {

constexpr uint64_t kPresent = 1ULL << 63;

struct Mapping {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t file_offset = 0;
  std::string path;
};

// One line of /proc/<pid>/maps: "start-end perms offset dev inode   path" (the path may hold
// spaces; a deleted file ends in " (deleted)").
bool parse_maps_line(const std::string& line, Mapping& out) {
  std::istringstream in(line);
  std::string range, perms, offset, dev, inode;
  if (!(in >> range >> perms >> offset >> dev >> inode)) return false;
  std::string path;
  std::getline(in >> std::ws, path);
  if (path.empty() || path.front() != '/') return false;
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.size() > kDeleted.size() &&
      path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
    return false;
  }
  auto dash = range.find('-');
  if (dash == std::string::npos) return false;
  try {
    out.start = std::stoull(range.substr(0, dash), nullptr, 16);
    out.end = std::stoull(range.substr(dash + 1), nullptr, 16);
    out.file_offset = std::stoull(offset, nullptr, 16);
  } catch (...) {
    return false;
  }
  out.path = std::move(path);
  return out.end > out.start;
}

// Appends the file ranges of `m` whose pages are present.
Status present_ranges(int pagemap, const Mapping& m, uint64_t page, std::vector<ByteRange>& out) {
  uint64_t pages = (m.end - m.start) / page;
  std::vector<uint64_t> entries(pages);
  auto bytes = static_cast<ssize_t>(pages * sizeof(uint64_t));
  ssize_t n = pread(pagemap, entries.data(), static_cast<size_t>(bytes),
                    static_cast<off_t>(m.start / page * sizeof(uint64_t)));
  if (n != bytes) return Error{std::string("pagemap: ") + (n < 0 ? strerror(errno) : "short read")};
  for (uint64_t i = 0; i < pages; ++i) {
    if ((entries[i] & kPresent) == 0) continue;
    out.push_back({m.file_offset + i * page, page});
  }
  return ok_status();
}

std::vector<ByteRange> merged(std::vector<ByteRange> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> out;
  for (const auto& r : ranges) {
    if (!out.empty() && r.offset <= out.back().offset + out.back().length) {
      uint64_t end = std::max(out.back().offset + out.back().length, r.offset + r.length);
      out.back().length = end - out.back().offset;
    } else {
      out.push_back(r);
    }
  }
  return out;
}

int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

}  // namespace

Expected<std::vector<MappedFile>> mapped_pages(pid_t pid) {
  std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream maps(proc + "/maps");
  if (!maps) return Error{"cannot read " + proc + "/maps"};
  Fd pagemap(open((proc + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap.valid()) return Error{"cannot open " + proc + "/pagemap: " + strerror(errno)};
  auto page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));

  std::map<std::string, std::vector<ByteRange>> by_path;  // sorted: a stable file order
  std::string line;
  while (std::getline(maps, line)) {
    Mapping m;
    if (!parse_maps_line(line, m)) continue;
    auto added = present_ranges(pagemap.get(), m, page, by_path[m.path]);
    if (!added) return added.error();
  }
  std::vector<MappedFile> out;
  for (auto& [path, ranges] : by_path) {
    struct stat st {};
    if (ranges.empty() || stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    out.push_back({path, static_cast<uint64_t>(st.st_size), mtime_ns(st), merged(ranges)});
  }
  return out;
}

bool unchanged_since_recorded(const MappedFile& file) {
  struct stat st {};
  return stat(file.path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         static_cast<uint64_t>(st.st_size) == file.size && mtime_ns(st) == file.mtime_ns;
}

uint64_t total_bytes(const std::vector<ByteRange>& ranges) {
  uint64_t total = 0;
  for (const auto& r : ranges) total += r.length;
  return total;
}

}  // namespace knext
