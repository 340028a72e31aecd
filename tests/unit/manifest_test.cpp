// The prewarm manifest: format, garbage, atomic writes.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>
#include "tests/unit/scratch_dir.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cachewarm/page_cache/manifest.hpp"
#include "cachewarm/text_file.hpp"

namespace fs = std::filesystem;
using knext::PrewarmManifest;

namespace {

using TempDir = knext::test::ScratchDir;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

TEST_CASE("manifest: format then parse gives the same manifest") {
  PrewarmManifest m;
  m.build_id = "8Xb1YpQ2sZ-_";
  m.paths = {"/app/server.js", "/app/node_modules/next/dist/server/next-server.js",
             "/app/.next/server/app/page.js", "/app/with space/[slug]/é.js"};
  auto text = knext::format_manifest(m);
  REQUIRE(text.ok());
  CHECK(text->rfind("# knext-prewarm-manifest v1\n# build-id 8Xb1YpQ2sZ-_\n/app/server.js\n", 0) ==
        0);
  auto back = knext::parse_manifest(*text);
  REQUIRE(back.ok());
  CHECK(back->build_id == m.build_id);
  CHECK(back->paths == m.paths);
}

TEST_CASE("manifest: without a build id there is no build-id line") {
  PrewarmManifest m;
  m.paths = {"/a", "/b"};
  auto text = knext::format_manifest(m);
  REQUIRE(text.ok());
  CHECK(*text == "# knext-prewarm-manifest v1\n/a\n/b\n");
  auto back = knext::parse_manifest(*text);
  REQUIRE(back.ok());
  CHECK(back->build_id.empty());
  CHECK(back->paths == m.paths);
}

TEST_CASE("manifest: comments, blank lines, CRLF, repeats and a last line without newline") {
  auto m = knext::parse_manifest(
      "# knext-prewarm-manifest v1\r\n"
      "# recorded by knext-launch --prewarm\r\n"
      "\r\n"
      "/a.js\r\n"
      "/b.js\n"
      "/a.js\n"
      "# build-id abc\n"
      "/c.js");
  REQUIRE(m.ok());
  CHECK(m->build_id == "abc");
  CHECK(m->paths == std::vector<std::string>{"/a.js", "/b.js", "/c.js"});
}

TEST_CASE("manifest: a header only is an empty list") {
  auto m = knext::parse_manifest("# knext-prewarm-manifest v1\n");
  REQUIRE(m.ok());
  CHECK(m->paths.empty());
}

TEST_CASE("manifest: garbage is an error naming the line") {
  struct Case {
    std::string text;
    std::string error_part;
  };
  const std::vector<Case> cases = {
      {"", "line 1: empty"},
      {"/app/server.js\n", "line 1: not a prewarm manifest"},
      {"# knext-prewarm-manifest v2\n/a\n", "line 1: unsupported version"},
      {" # knext-prewarm-manifest v1\n", "line 1"},
      {"# knext-prewarm-manifest v1\n/a\nrelative/path.js\n", "line 3: not an absolute path"},
      {"# knext-prewarm-manifest v1\n# build-id ../../etc\n", "line 2: bad build id"},
      {"# knext-prewarm-manifest v1\n# build-id \n", "line 2: bad build id"},
      {std::string("# knext-prewarm-manifest v1\n/a\0b\n", 33), "line 2: NUL"},
      {"{\"files\":[\"a\"]}", "line 1"},
      {std::string("\x7f"
                   "ELF\x02\x01\x01",
                   7),
       "line 1"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto m = knext::parse_manifest(c.text);
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().message.find(c.error_part) != std::string::npos);
  }
}

TEST_CASE("manifest: paths that cannot be recorded are refused") {
  for (const std::string& bad : {std::string("relative.js"), std::string(""), std::string("/a\nb"),
                                 std::string("/a\r"), std::string("/a\0b", 4)}) {
    PrewarmManifest m;
    m.paths = {"/ok", bad};
    CHECK_FALSE(knext::format_manifest(m).ok());
  }
  PrewarmManifest bad_id;
  bad_id.build_id = "has space";
  CHECK_FALSE(knext::format_manifest(bad_id).ok());
}

TEST_CASE("manifest: format drops repeated paths") {
  PrewarmManifest m;
  m.paths = {"/a", "/b", "/a"};
  auto text = knext::format_manifest(m);
  REQUIRE(text.ok());
  CHECK(*text == "# knext-prewarm-manifest v1\n/a\n/b\n");
}

TEST_CASE("manifest: write then read through a file; a rewrite replaces it atomically") {
  TempDir dir;
  std::string path = dir / "knext-prewarm-manifest.txt";
  PrewarmManifest m;
  m.build_id = "build1";
  m.paths = {"/x/server.js", "/x/y.js"};
  REQUIRE(knext::write_manifest(path, m).ok());
  auto back = knext::read_manifest(path);
  REQUIRE(back.ok());
  CHECK(back->build_id == "build1");
  CHECK(back->paths == m.paths);

  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);

  m.paths = {"/z.js"};
  REQUIRE(knext::write_manifest(path, m).ok());
  back = knext::read_manifest(path);
  REQUIRE(back.ok());
  CHECK(back->paths == std::vector<std::string>{"/z.js"});
  // No temp file is left beside it.
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);
}

TEST_CASE("manifest: a failed write leaves the old manifest and no temp file") {
  TempDir dir;
  std::string path = dir / "m.txt";
  PrewarmManifest good;
  good.paths = {"/good.js"};
  REQUIRE(knext::write_manifest(path, good).ok());
  PrewarmManifest bad;
  bad.paths = {"relative.js"};
  CHECK_FALSE(knext::write_manifest(path, bad).ok());
  // A directory that does not exist: the temp file cannot even be created.
  CHECK_FALSE(knext::write_manifest(dir / "missing/m.txt", good).ok());
  auto back = knext::read_manifest(path);
  REQUIRE(back.ok());
  CHECK(back->paths == good.paths);
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);
}

TEST_CASE("manifest: reading a missing file, a directory or garbage is an error") {
  TempDir dir;
  CHECK_FALSE(knext::read_manifest(dir / "none.txt").ok());
  CHECK_FALSE(knext::read_manifest(dir.path()).ok());
  write_text(dir / "junk.txt", "not a manifest\n/a\n");
  auto junk = knext::read_manifest(dir / "junk.txt");
  REQUIRE_FALSE(junk.ok());
  CHECK(junk.error().message.find("junk.txt") != std::string::npos);
  REQUIRE(mkfifo((dir / "fifo").c_str(), 0600) == 0);
  CHECK_FALSE(knext::read_manifest(dir / "fifo").ok());  // and does not block
}

TEST_CASE("manifest: read_text_file enforces its limit") {
  TempDir dir;
  write_text(dir / "f", std::string(100, 'x'));
  auto fits = knext::read_text_file(dir / "f", 100);
  REQUIRE(fits.ok());
  CHECK(fits->size() == 100);
  auto over = knext::read_text_file(dir / "f", 99);
  REQUIRE_FALSE(over.ok());
  CHECK(over.error().code == EFBIG);
}

TEST_CASE("manifest: the default place is beside BUILD_ID") {
  CHECK(knext::manifest_path_for("/app") == "/app/.next/knext-prewarm-manifest.txt");
}
