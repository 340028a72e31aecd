#include "cachewarm/page_cache/manifest.hpp"

#include <unordered_set>

#include "cachewarm/build_id.hpp"
#include "cachewarm/text_file.hpp"

namespace knext {
namespace {

constexpr size_t kMaxManifestBytes = 16u << 20;
constexpr std::string_view kBuildIdPrefix = "# build-id ";
constexpr std::string_view kHeaderStem = "# knext-prewarm-manifest ";

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

Error line_error(size_t line, const std::string& what) {
  return Error{"prewarm manifest line " + std::to_string(line) + ": " + what};
}

}  // namespace

std::string manifest_path_for(const std::string& app_dir) {
  return app_dir + "/.next/knext-prewarm-manifest.txt";
}

Expected<PrewarmManifest> parse_manifest(std::string_view text) {
  PrewarmManifest out;
  std::unordered_set<std::string_view> seen;
  size_t line_no = 0;
  while (!text.empty()) {
    std::string_view line = take_line(text);
    ++line_no;
    if (line_no == 1) {
      if (line == kManifestHeader) continue;
      if (starts_with(line, kHeaderStem)) return line_error(1, "unsupported version");
      return line_error(1, "not a prewarm manifest (no header)");
    }
    if (line.empty()) continue;
    if (line.find('\0') != std::string_view::npos) return line_error(line_no, "NUL byte");
    if (starts_with(line, kBuildIdPrefix)) {
      std::string_view id = line.substr(kBuildIdPrefix.size());
      if (!valid_build_id(id)) return line_error(line_no, "bad build id");
      out.build_id = std::string(id);
      continue;
    }
    if (line.front() == '#') continue;
    if (line.front() != '/') return line_error(line_no, "not an absolute path");
    // Only a CR-terminated path is written so (a CRLF line end loses one): no writer records it.
    if (line.back() == '\r') return line_error(line_no, "path ends in CR");
    if (seen.insert(line).second) out.paths.emplace_back(line);
  }
  if (line_no == 0) return line_error(1, "empty file");
  return out;
}

Expected<std::string> format_manifest(const PrewarmManifest& manifest) {
  std::string out(kManifestHeader);
  out += '\n';
  if (!manifest.build_id.empty()) {
    if (!valid_build_id(manifest.build_id)) return Error{"bad build id: " + manifest.build_id};
    out += kBuildIdPrefix;
    out += manifest.build_id;
    out += '\n';
  }
  std::unordered_set<std::string_view> seen;
  for (const auto& path : manifest.paths) {
    if (path.empty() || path.front() != '/') return Error{"not an absolute path: " + path};
    // A '\r' ends a line too when it is the last byte of one (CRLF files).
    if (path.find_first_of(std::string_view("\n\0", 2)) != std::string::npos ||
        path.back() == '\r') {
      return Error{"path with a newline, NUL or trailing CR cannot be recorded: " + path};
    }
    if (!seen.insert(path).second) continue;
    out += path;
    out += '\n';
  }
  return out;
}

Expected<PrewarmManifest> read_manifest(const std::string& path) {
  auto text = read_text_file(path, kMaxManifestBytes);
  if (!text) return text.error();
  auto manifest = parse_manifest(*text);
  if (!manifest) return Error{path + ": " + manifest.error().message};
  return manifest;
}

Status write_manifest(const std::string& path, const PrewarmManifest& manifest) {
  auto text = format_manifest(manifest);
  if (!text) return text.error();
  return write_file_atomically(path, *text);
}

}  // namespace knext
