#include "cachewarm/page_cache/mapped_pages_file.hpp"

#include <cerrno>
#include <charconv>

#include "cachewarm/text_file.hpp"
#include "cachewarm/volume_file.hpp"

namespace knext {
namespace {

constexpr size_t kMaxBytes = 4u << 20;
constexpr std::string_view kFilePrefix = "file ";

Error line_error(size_t line, const std::string& what) {
  return Error{"prewarm pages line " + std::to_string(line) + ": " + what};
}

// Parses one decimal number off the front of `s` and the blank after it, if any.
template <class T>
bool take_number(std::string_view& s, T& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || end == s.data()) return false;
  s.remove_prefix(static_cast<size_t>(end - s.data()));
  if (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return true;
}

}  // namespace

std::string mapped_pages_path_for(const std::string& app_dir) {
  return app_dir + "/.next/knext-prewarm-pages.txt";
}

Expected<std::vector<MappedFile>> parse_mapped_pages(std::string_view text) {
  std::vector<MappedFile> out;
  size_t line_no = 0;
  while (!text.empty()) {
    std::string_view line = take_line(text);
    ++line_no;
    if (line_no == 1) {
      if (line == kMappedPagesHeader) continue;
      return line_error(
          1, "not a prewarm pages file (no \"" + std::string(kMappedPagesHeader) + "\" header)");
    }
    if (line.empty() || line.front() == '#') continue;
    // A path is opened as a C string: with a NUL it would name another file.
    if (line.find('\0') != std::string_view::npos) return line_error(line_no, "NUL byte");
    if (line.substr(0, kFilePrefix.size()) == kFilePrefix) {
      line.remove_prefix(kFilePrefix.size());
      MappedFile file;
      if (!take_number(line, file.size) || !take_number(line, file.mtime_ns) || line.empty() ||
          line.front() != '/') {
        return line_error(line_no, "expected \"file <size> <mtime_ns> </absolute/path>\"");
      }
      if (line.back() == '\r') return line_error(line_no, "path ends in CR");
      file.path = std::string(line);
      out.push_back(std::move(file));
      continue;
    }
    ByteRange range;
    if (!take_number(line, range.offset) || !take_number(line, range.length) || !line.empty()) {
      return line_error(line_no, "expected \"<offset> <length>\"");
    }
    if (out.empty()) return line_error(line_no, "a range before any file line");
    if (range.length > 0) out.back().ranges.push_back(range);
  }
  if (line_no == 0) return line_error(1, "empty file");
  return out;
}

Expected<std::string> format_mapped_pages(const std::vector<MappedFile>& files) {
  std::string out(kMappedPagesHeader);
  out += '\n';
  for (const auto& file : files) {
    if (file.path.empty() || file.path.front() != '/' ||
        file.path.find_first_of(std::string_view("\n\0", 2)) != std::string::npos ||
        file.path.back() == '\r') {
      return Error{"cannot record path: " + file.path};
    }
    out += std::string(kFilePrefix) + std::to_string(file.size) + ' ' +
           std::to_string(file.mtime_ns) + ' ' + file.path + '\n';
    for (const auto& r : file.ranges) {
      out += std::to_string(r.offset) + ' ' + std::to_string(r.length) + '\n';
    }
  }
  return out;
}

Expected<std::vector<MappedFile>> read_mapped_pages(const std::string& path) {
  auto text = read_text_file(path, kMaxBytes);
  if (!text) return text.error();
  auto files = parse_mapped_pages(*text);
  if (!files) return Error{path + ": " + files.error().message};
  return files;
}

Status write_mapped_pages(const std::string& path, const std::vector<MappedFile>& files) {
  auto text = format_mapped_pages(files);
  if (!text) return text.error();
  return write_file_atomically(path, *text);
}

Expected<std::vector<MappedFile>> read_mapped_pages_at(int dirfd, const std::string& name,
                                                       uid_t uid) {
  auto text = read_trusted_file_at(dirfd, name, kMaxBytes, uid);
  if (!text) return text.error();
  auto files = parse_mapped_pages(*text);
  if (!files) return Error{name + ": " + files.error().message};
  return files;
}

Status write_mapped_pages_at(int dirfd, const std::string& name,
                             const std::vector<MappedFile>& files, uid_t owner) {
  auto text = format_mapped_pages(files);
  if (!text) return text.error();
  return write_file_atomically_at(dirfd, name, *text, owner);
}

RecordedPages recorded_pages_for(const std::string& path, const std::string& binary) {
  return recorded_pages_in(read_mapped_pages(path), binary);
}

RecordedPages recorded_pages_in(Expected<std::vector<MappedFile>> recorded,
                                const std::string& binary) {
  if (!recorded) {
    return {{}, recorded.error().code == ENOENT ? "no recorded pages" : recorded.error().message};
  }
  RecordedPages out;
  bool has_binary = false;
  for (auto& file : *recorded) {
    if (!unchanged_since_recorded(file)) continue;
    has_binary = has_binary || file.path == binary;
    out.targets.push_back({std::move(file.path), std::move(file.ranges)});
  }
  if (!has_binary) return {{}, "the recorded pages are for another node binary"};
  return out;
}

}  // namespace knext
