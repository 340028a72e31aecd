#pragma once
// The pages node had mapped once warm, recorded by `--prewarm` beside the manifest and read at
// every start by the node binary's prewarm lane:
//
//   # knext-prewarm-pages v1
//   file 126595440 1761475200000000000 /usr/local/bin/node
//   0 35733504
//   35966976 37756928
//   ...
//
// A `file` line gives the size and mtime (ns) the file had, then its path (the rest of the
// line); the lines after it are byte ranges "offset length" of that file. '#' lines are
// comments; blank lines are ignored.
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "cachewarm/page_cache/mapped_pages.hpp"
#include "common/expected.hpp"

namespace knext {

inline constexpr std::string_view kMappedPagesHeader = "# knext-prewarm-pages v1";

// <app_dir>/.next/knext-prewarm-pages.txt
std::string mapped_pages_path_for(const std::string& app_dir);

// Errors name the line.
Expected<std::vector<MappedFile>> parse_mapped_pages(std::string_view text);
Expected<std::string> format_mapped_pages(const std::vector<MappedFile>& files);

Expected<std::vector<MappedFile>> read_mapped_pages(const std::string& path);
Status write_mapped_pages(const std::string& path, const std::vector<MappedFile>& files);
// The same for `name` in a checked cache directory (volume_file.hpp: a trusted file of `uid`).
Expected<std::vector<MappedFile>> read_mapped_pages_at(int dirfd, const std::string& name,
                                                       uid_t uid);
Status write_mapped_pages_at(int dirfd, const std::string& name,
                             const std::vector<MappedFile>& files, uid_t owner);

// What a start may prewarm from the pages file at `path` for the node binary `binary` (its
// canonical path): the ranges of every recorded file that still has its size and mtime, if
// `binary` is one of them. Otherwise no targets and, in a few words, why not.
struct RecordedPages {
  std::vector<PrewarmTarget> targets;
  std::string why_not;
};
RecordedPages recorded_pages_for(const std::string& path, const std::string& binary);
RecordedPages recorded_pages_in(Expected<std::vector<MappedFile>> recorded,
                                const std::string& binary);

}  // namespace knext
