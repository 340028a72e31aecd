// Compile-cache hygiene: LRU eviction of old builds and node's leaked temp files.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include "tests/unit/scratch_dir.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "cachewarm/compile_cache/cache_eviction.hpp"

namespace fs = std::filesystem;
using knext::evict_old_builds;
using knext::is_node_temp_name;
using knext::remove_stale_temp_files;

namespace {

using TempDir = knext::test::ScratchDir;

void write_file(const std::string& path, size_t bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << std::string(bytes, 'x');
}

// Sets a path's mtime to `seconds_ago` before now.
void age(const std::string& path, long seconds_ago) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  timespec times[2] = {now, now};
  times[0].tv_sec -= seconds_ago;
  times[1].tv_sec -= seconds_ago;
  REQUIRE(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

// <app>/<build>/<node tag>/<entry> of `bytes`, last used `seconds_ago`.
void make_build(const TempDir& app, const std::string& build, size_t bytes, long seconds_ago) {
  write_file(app / (build + "/v24.0.0-x64-abcdef01-0/0badcafe"), bytes);
  age(app / build, seconds_ago);
}

}  // namespace

TEST_CASE("node temp names: <8 hex>.<6 mkstemp chars> only") {
  CHECK(is_node_temp_name("712488c2.LuhsmB"));
  CHECK(is_node_temp_name("00000000.000000"));
  CHECK_FALSE(is_node_temp_name("712488c2"));  // a real entry
  CHECK_FALSE(is_node_temp_name("712488C2.LuhsmB"));
  CHECK_FALSE(is_node_temp_name("712488c2.Luhsm"));
  CHECK_FALSE(is_node_temp_name("712488c2.Luhsm_"));
  CHECK_FALSE(is_node_temp_name("712488c2.cache.tcqrsK"));  // the stale example in node's comment
  CHECK_FALSE(is_node_temp_name("712488g2.LuhsmB"));
  CHECK_FALSE(is_node_temp_name(".knext-probe-1"));
}

TEST_CASE("stale temp files: old 0-byte temps go, entries and anything in use stay") {
  TempDir cache;
  std::string tag = cache / "v24.0.0-x64-abcdef01-0";
  write_file(tag + "/712488c2", 100);        // entry
  write_file(tag + "/712488c2.LuhsmB", 0);   // leaked
  write_file(tag + "/8e9c99c2.hwlSas", 0);   // leaked
  write_file(tag + "/9fb526e9.wPP9zO", 0);   // just created by a flushing node
  write_file(tag + "/aaaaaaaa.bbbbbb", 10);  // being written
  write_file(tag + "/notatemp.xyz", 0);      // not node's
  write_file(cache / "0123abcd.Zz09Aa", 0);  // at the top level too
  for (auto name : {"712488c2.LuhsmB", "8e9c99c2.hwlSas", "aaaaaaaa.bbbbbb", "notatemp.xyz"}) {
    age(tag + "/" + name, 3600);
  }
  age(cache / "0123abcd.Zz09Aa", 3600);
  fs::create_directories(tag + "/00000000.aaaaaa");  // a directory with a temp-like name
  age(tag + "/00000000.aaaaaa", 3600);

  CHECK(remove_stale_temp_files(cache.path()) == 3);
  CHECK(fs::exists(tag + "/712488c2"));
  CHECK_FALSE(fs::exists(tag + "/712488c2.LuhsmB"));
  CHECK_FALSE(fs::exists(tag + "/8e9c99c2.hwlSas"));
  CHECK_FALSE(fs::exists(cache / "0123abcd.Zz09Aa"));
  CHECK(fs::exists(tag + "/9fb526e9.wPP9zO"));
  CHECK(fs::exists(tag + "/aaaaaaaa.bbbbbb"));
  CHECK(fs::exists(tag + "/notatemp.xyz"));
  CHECK(fs::exists(tag + "/00000000.aaaaaa"));

  CHECK(remove_stale_temp_files(cache.path(), std::chrono::seconds(0)) == 1);
  CHECK_FALSE(fs::exists(tag + "/9fb526e9.wPP9zO"));
  CHECK(remove_stale_temp_files(cache / "missing") == 0);
}

TEST_CASE("eviction: least recently used builds go until under the cap") {
  TempDir app;
  make_build(app, "oldest", 100'000, 400);
  make_build(app, "older", 100'000, 300);
  make_build(app, "current", 100'000, 200);
  make_build(app, "newest", 100'000, 100);
  write_file(app / "README", 10);  // not a build: ignored
  auto r = evict_old_builds(app.path(), "current", 250'000);
  CHECK(r.error.empty());
  CHECK(r.bytes_before == 400'000);
  REQUIRE(r.removed.size() == 2);
  CHECK(r.removed[0] == "oldest");
  CHECK(r.removed[1] == "older");
  CHECK(r.bytes_after == 200'000);
  CHECK(fs::exists(app / "current"));
  CHECK(fs::exists(app / "newest"));
  CHECK_FALSE(fs::exists(app / "oldest"));
  CHECK(fs::exists(app / "README"));
  for (const auto& e : fs::directory_iterator(app.path())) {
    CHECK_FALSE(e.path().filename().string().starts_with(".tmp-"));
  }
}

TEST_CASE("eviction: never the current build, even when it alone is over the cap") {
  TempDir app;
  make_build(app, "current", 300'000, 1000);  // also the least recently used
  make_build(app, "other", 10'000, 10);
  auto r = evict_old_builds(app.path(), "current", 100'000);
  REQUIRE(r.removed.size() == 1);
  CHECK(r.removed[0] == "other");
  CHECK(r.bytes_after == 300'000);
  CHECK(fs::exists(app / "current/v24.0.0-x64-abcdef01-0/0badcafe"));
}

TEST_CASE("eviction: under the cap nothing is removed; a missing directory is one error line") {
  TempDir app;
  make_build(app, "a", 1000, 100);
  make_build(app, "b", 1000, 50);
  auto r = evict_old_builds(app.path(), "b", 2000);
  CHECK(r.removed.empty());
  CHECK(r.bytes_after == 2000);
  auto missing = evict_old_builds(app / "nope", "b", 0);
  CHECK(missing.error.find("No such file or directory") != std::string::npos);
  CHECK(missing.error.find('\n') == std::string::npos);
}

TEST_CASE("eviction: touching a build makes it the most recently used") {
  TempDir app;
  make_build(app, "a", 1000, 300);
  make_build(app, "b", 1000, 200);
  make_build(app, "c", 1000, 100);
  REQUIRE(knext::touch_build_dir(app / "a").ok());
  auto r = evict_old_builds(app.path(), "c", 2000);
  REQUIRE(r.removed.size() == 1);
  CHECK(r.removed[0] == "b");
  CHECK(fs::exists(app / "a"));
  CHECK_FALSE(knext::touch_build_dir(app / "gone").ok());
}

TEST_CASE("eviction: abandoned copies go after 10 minutes, fresh ones stay") {
  TempDir app;
  make_build(app, "current", 10, 0);
  write_file(app / ".tmp-current-1-0123456789abcdef/tag/entry", 5000);
  write_file(app / ".tmp-evict-old-1-0123456789abcdef/tag/entry", 5000);
  write_file(app / ".tmp-current-1-fedcba9876543210/tag/entry", 5000);
  age(app / ".tmp-current-1-0123456789abcdef", 601);
  age(app / ".tmp-evict-old-1-0123456789abcdef", 3600);
  auto r = evict_old_builds(app.path(), "current", 1 << 20);
  CHECK(r.abandoned_copies_removed == 2);
  CHECK(r.bytes_before == 10);  // copies in progress are not builds
  CHECK_FALSE(fs::exists(app / ".tmp-current-1-0123456789abcdef"));
  CHECK(fs::exists(app / ".tmp-current-1-fedcba9876543210/tag/entry"));
}

TEST_CASE("eviction: concurrent launchers agree and keep the current build") {
  for (int round = 0; round < 10; ++round) {
    TempDir app;
    for (int i = 0; i < 8; ++i) {
      std::string name = "b";  // not "b" + to_string(): GCC 12 -Wrestrict false positive
      name += std::to_string(i);
      make_build(app, name, 50'000, 1000 - i);
    }
    knext::EvictionReport r1, r2;
    std::thread t1([&] { r1 = evict_old_builds(app.path(), "b0", 120'000); });
    std::thread t2([&] { r2 = evict_old_builds(app.path(), "b0", 120'000); });
    t1.join();
    t2.join();
    CHECK(r1.error.empty());
    CHECK(r2.error.empty());
    CHECK(r1.bytes_after <= 120'000);
    CHECK(r2.bytes_after <= 120'000);
    CHECK(r1.removed.size() + r2.removed.size() == 6);
    CHECK(fs::exists(app / "b0/v24.0.0-x64-abcdef01-0/0badcafe"));
    CHECK(fs::exists(app / "b7"));
    size_t left = 0;
    for (const auto& e : fs::directory_iterator(app.path())) {
      CHECK_FALSE(e.path().filename().string().starts_with(".tmp-"));
      ++left;
    }
    CHECK(left == 2);
  }
}
