// Node's mapped pages: read from /proc of a live process (this test binary), and the file
// --prewarm records them in.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cachewarm/page_cache/mapped_pages.hpp"
#include "cachewarm/page_cache/mapped_pages_file.hpp"
#include "tests/unit/scratch_dir.hpp"

namespace fs = std::filesystem;
using knext::ByteRange;
using knext::MappedFile;

TEST_CASE("mapped pages: this process's own binary, in sorted page-aligned ranges") {
  auto files = knext::mapped_pages(getpid());
  REQUIRE_MESSAGE(files.ok(), files.error().message);
  std::string self = fs::canonical("/proc/self/exe").string();
  const MappedFile* binary = nullptr;
  for (const auto& f : *files) {
    if (f.path == self) binary = &f;
  }
  REQUIRE(binary != nullptr);
  CHECK(binary->size == fs::file_size(self));
  CHECK(knext::unchanged_since_recorded(*binary));
  REQUIRE_FALSE(binary->ranges.empty());
  auto page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t end = 0;
  for (const auto& r : binary->ranges) {
    CHECK(r.offset % page == 0);
    CHECK(r.length % page == 0);
    CHECK(r.length > 0);
    // Sorted and merged: a gap before each range but the first.
    if (&r != &binary->ranges.front()) CHECK(r.offset > end);
    end = r.offset + r.length;
  }
  CHECK(knext::total_bytes(binary->ranges) <= (binary->size + page - 1) / page * page);

  MappedFile changed = *binary;
  changed.mtime_ns += 1;
  CHECK_FALSE(knext::unchanged_since_recorded(changed));
}

TEST_CASE("mapped pages: a process that is gone is an error, not a crash") {
  auto files = knext::mapped_pages(0x7ffffff0);
  CHECK_FALSE(files.ok());
  CHECK(files.error().message.find("/proc/") != std::string::npos);
}

TEST_CASE("mapped pages file: format then parse gives the same files, paths with spaces too") {
  std::vector<MappedFile> files{
      {"/usr/local/bin/node", 126595440, 1761475200123456789, {{0, 4096}, {8192, 1 << 20}}},
      {"/opt/my app/lib x.so", 100, -5, {}},
  };
  auto text = knext::format_mapped_pages(files);
  REQUIRE(text.ok());
  CHECK(text->rfind("# knext-prewarm-pages v1\nfile 126595440 1761475200123456789 "
                    "/usr/local/bin/node\n0 4096\n8192 1048576\n",
                    0) == 0);
  auto back = knext::parse_mapped_pages(*text);
  REQUIRE_MESSAGE(back.ok(), back.error().message);
  REQUIRE(back->size() == 2);
  CHECK((*back)[0].path == "/usr/local/bin/node");
  CHECK((*back)[0].mtime_ns == 1761475200123456789);
  CHECK((*back)[0].ranges == files[0].ranges);
  CHECK((*back)[1].path == "/opt/my app/lib x.so");
  CHECK((*back)[1].mtime_ns == -5);
  CHECK((*back)[1].ranges.empty());

  CHECK_FALSE(knext::format_mapped_pages({{"relative", 1, 1, {}}}).ok());
  CHECK_FALSE(knext::format_mapped_pages({{"/a\nb", 1, 1, {}}}).ok());
}

TEST_CASE("mapped pages file: garbage is an error naming the line") {
  struct Case {
    const char* text;
    const char* error;
  };
  for (const auto& c : std::vector<Case>{
           {"", "line 1: empty file"},
           {"# knext-prewarm-pages v2\n", "line 1: not a prewarm pages file"},
           {"# knext-prewarm-pages v1\n0 4096\n", "line 2: a range before any file line"},
           {"# knext-prewarm-pages v1\nfile x 1 /a\n", "line 2: expected \"file <size>"},
           {"# knext-prewarm-pages v1\nfile 1 1 a\n", "line 2: expected \"file <size>"},
           {"# knext-prewarm-pages v1\nfile 1 1 /a\n\n# c\n0 4096 7\n", "line 5: expected"},
           {"# knext-prewarm-pages v1\nfile 1 1 /a\n-1 4096\n", "line 3: expected"},
       }) {
    auto parsed = knext::parse_mapped_pages(c.text);
    REQUIRE_FALSE(parsed.ok());
    CHECK_MESSAGE(parsed.error().message.find(c.error) != std::string::npos,
                  parsed.error().message);
  }
}

TEST_CASE("mapped pages file: written atomically and read back") {
  knext::test::ScratchDir dir;
  std::string path = dir / "pages.txt";
  std::vector<MappedFile> files{{"/bin/sh", 10, 20, {{0, 4096}}}};
  REQUIRE(knext::write_mapped_pages(path, files).ok());
  auto back = knext::read_mapped_pages(path);
  REQUIRE(back.ok());
  CHECK((*back)[0].ranges == files[0].ranges);
  CHECK(knext::mapped_pages_path_for("/app") == "/app/.next/knext-prewarm-pages.txt");
  CHECK_FALSE(knext::read_mapped_pages(dir / "missing").ok());
}
