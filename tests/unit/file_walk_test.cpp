// The one tree walk (cachewarm/dir_ops.hpp) on a real scratch tree.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "cachewarm/dir_ops.hpp"
#include "tests/unit/scratch_dir.hpp"

namespace {

std::map<std::string, off_t> walk(const std::string& dir, int max_depth) {
  std::map<std::string, off_t> seen;
  knext::for_each_file(dir, max_depth, [&](const std::string& rel, const struct stat& st) {
    seen[rel] = st.st_size;
  });
  return seen;
}

}  // namespace

TEST_CASE("file walk: every regular file below, by relative path, never through a symlink") {
  knext::test::ScratchDir dir("knext-walk");
  std::filesystem::create_directories(dir / "a/b/c");
  std::ofstream(dir / "top") << "1";
  std::ofstream(dir / "a/one") << "22";
  std::ofstream(dir / "a/b/c/deep") << "333";
  std::filesystem::create_directories(dir / "outside");
  std::ofstream(dir / "outside/secret") << "4444";
  REQUIRE(symlink((dir / "outside").c_str(), (dir / "a/link-dir").c_str()) == 0);
  REQUIRE(symlink((dir / "top").c_str(), (dir / "a/link-file").c_str()) == 0);

  auto all = walk(dir / "a", 16);
  CHECK(all == std::map<std::string, off_t>{{"one", 2}, {"b/c/deep", 3}});

  // Depth counts directories below the start: c/ is two down.
  CHECK(walk(dir / "a", 1) == std::map<std::string, off_t>{{"one", 2}});
  CHECK(walk(dir / "a", 2) == all);

  // The start itself may be a symlink (a volume path given by the user).
  REQUIRE(symlink((dir / "a").c_str(), (dir / "start-link").c_str()) == 0);
  CHECK(walk(dir / "start-link", 16) == all);
  CHECK(walk(dir / "missing", 16).empty());

  int fd = open(dir.path().c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(fd >= 0);
  CHECK(knext::tree_bytes_at(fd, "a") == 5);
  CHECK(knext::tree_bytes_at(fd, "top") == 1);
  close(fd);
}
