// Compile-cache placement: build ids, layout, trust, writability, seeding. Runs as root: the
// tests chown to other uids and mount small tmpfs instances for read-only and full disks.
#include <doctest/doctest.h>

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tests/unit/scratch_dir.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cachewarm/build_id.hpp"
#include "cachewarm/compile_cache/cache_placement.hpp"

namespace fs = std::filesystem;
using knext::CacheOptions;
using knext::CacheSource;
using knext::place_compile_cache;

namespace {

constexpr uid_t kOtherUid = 65534;

using TempDir = knext::test::ScratchDir;

// A small tmpfs, unmounted when the test ends. The first one moves the test process into its
// own mount namespace, so a crashed test leaves no mount behind on the machine.
class Tmpfs {
 public:
  explicit Tmpfs(const std::string& dir, const char* size = "size=64k") : dir_(dir) {
    static const bool private_mounts =
        unshare(CLONE_NEWNS) == 0 &&
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
    (void)private_mounts;
    fs::create_directories(dir);
    INFO("mounting tmpfs needs root: " << std::strerror(errno));
    REQUIRE(mount("tmpfs", dir.c_str(), "tmpfs", 0, size) == 0);
  }
  ~Tmpfs() { umount2(dir_.c_str(), MNT_DETACH); }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;
  void make_read_only() {
    REQUIRE(mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0);
  }
  void fill() {
    std::ofstream out(dir_ + "/filler", std::ios::binary);
    std::string block(4096, 'x');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) out.flush();
  }

 private:
  std::string dir_;
};

void write_file(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

uid_t owner_of(const std::string& path) {
  struct stat st {};
  REQUIRE(lstat(path.c_str(), &st) == 0);
  return st.st_uid;
}

// An app with a BUILD_ID, a 0700 volume root owned by us, and a tmp root for the fallback.
struct Fixture {
  TempDir tmp;
  CacheOptions options;

  explicit Fixture(const std::string& build_id = "build-1") {
    write_file(tmp / "app/.next/BUILD_ID", build_id + "\n");
    write_file(tmp / "app/server.js", "require('next')\n");
    fs::create_directories(tmp / "volume");
    fs::create_directories(tmp / "tmproot");
    chmod((tmp / "volume").c_str(), 0700);
    chmod((tmp / "tmproot").c_str(), 01777);
    options.app_dir = tmp / "app";
    options.cache_dir = tmp / "volume";
    options.tmp_dir = tmp / "tmproot";
    options.app_uid = getuid();
  }

  std::string tag() const { return "v24.0.0-x64-abcdef01-" + std::to_string(options.app_uid); }

  // A seed as `--prewarm` leaves it: <seed>/<app>/<build-id>/<node tag>/<entries>.
  std::string make_seed(const std::string& build_id = "build-1") {
    std::string dir = tmp / ("seed/app/" + build_id + "/" + tag());
    write_file(dir + "/0badcafe", std::string(3000, 'a'));
    write_file(dir + "/12345678", std::string(5000, 'b'));
    options.cache_seed = tmp / "seed";
    return tmp / ("seed/app/" + build_id);
  }
};

bool has_tmp_copies(const std::string& app_dir) {
  for (const auto& entry : fs::directory_iterator(app_dir)) {
    if (entry.path().filename().string().starts_with(".tmp-")) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("build id: BUILD_ID trimmed, else a hash of server.js, else unknown") {
  TempDir app;
  CHECK(knext::read_build_id(app.path()) == "unknown");

  write_file(app / "server.js", "console.log(1)\n");
  std::string hash = knext::read_build_id(app.path());
  CHECK(hash.size() == 16);
  CHECK(hash.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(knext::read_build_id(app.path()) == hash);
  write_file(app / "server.js", "console.log(2)\n");
  CHECK(knext::read_build_id(app.path()) != hash);

  write_file(app / ".next/BUILD_ID", "  xK3_-9aZ\r\n");
  CHECK(knext::read_build_id(app.path()) == "xK3_-9aZ");
}

TEST_CASE("build id: an invalid BUILD_ID falls back to the server.js hash") {
  TempDir app;
  write_file(app / "server.js", "x");
  std::string hash = knext::read_build_id(app.path());
  for (std::string bad : {std::string("../etc"), std::string("a b"), std::string(65, 'a'),
                          std::string(""), std::string("id\nmore")}) {
    CAPTURE(bad);
    write_file(app / ".next/BUILD_ID", bad);
    CHECK(knext::read_build_id(app.path()) == hash);
  }
  write_file(app / ".next/BUILD_ID", std::string(64, 'a'));
  CHECK(knext::read_build_id(app.path()) == std::string(64, 'a'));
  CHECK(knext::fnv1a64("") == 0xcbf29ce484222325ULL);
  CHECK(knext::fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
}

TEST_CASE("app name: basename of the app dir, sanitised") {
  CacheOptions o;
  o.app_dir = "/srv/my-app/";
  CHECK(knext::cache_app_name(o) == "my-app");
  o.app_dir = "/";
  CHECK(knext::cache_app_name(o) == "app");
  o.app_name = "../shop front";
  CHECK(knext::cache_app_name(o) == "_._shop_front");
  o.app_name = ".hidden";
  CHECK(knext::cache_app_name(o) == "_hidden");
}

TEST_CASE("volume: one directory per app and build, private, node's dir is NODE_COMPILE_CACHE") {
  Fixture f;
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kVolume);
  CHECK(p.path == f.tmp / "volume/app/build-1");
  CHECK(p.volume_dir == p.path);
  CHECK(p.build_id == "build-1");
  CHECK_FALSE(p.seeded_from_seed);
  CHECK(p.reason.find("no cache for build build-1 yet") != std::string::npos);
  CHECK(mode_of(f.tmp / "volume/app") == 0700);
  CHECK(mode_of(p.path) == 0700);
  CHECK(fs::is_empty(p.path));  // the writability probe left nothing behind

  fs::create_directories(p.path + "/" + f.tag());
  CHECK(place_compile_cache(f.options).reason.find("has build build-1") != std::string::npos);

  Fixture other_build("build-2");
  other_build.options.cache_dir = f.options.cache_dir;
  CHECK(place_compile_cache(other_build.options).path == f.tmp / "volume/app/build-2");
  f.options.app_name = "shop";
  CHECK(place_compile_cache(f.options).path == f.tmp / "volume/shop/build-1");
  CHECK(fs::exists(f.tmp / "volume/app/build-1/" + f.tag()));
}

TEST_CASE("volume: node's path is the held directory; a swapped <app> does not redirect it") {
  Fixture f;
  auto p = place_compile_cache(f.options);
  REQUIRE(p.source == CacheSource::kVolume);
  CHECK(p.dir == "/proc/self/fd/" + std::to_string(p.node_dir_fd()));
  // What a member of the volume's group can do after the check: move <app> away and put a
  // symlink to a directory of theirs in its place.
  fs::create_directories(f.tmp / "evil/build-1");
  fs::rename(f.tmp / "volume/app", f.tmp / "volume/app.moved");
  fs::create_directory_symlink(f.tmp / "evil", f.tmp / "volume/app");
  write_file(p.dir + "/written-through-the-fd", "x");
  CHECK(fs::exists(f.tmp / "volume/app.moved/build-1/written-through-the-fd"));
  CHECK(fs::is_empty(f.tmp / "evil/build-1"));
  // The launcher's later work goes through the held <app> fd too: the build it opens is ours.
  auto build = knext::open_volume_build(p, f.options.app_uid);
  REQUIRE(build.ok());
  struct stat held {};
  struct stat ours {};
  REQUIRE(fstat(build->get(), &held) == 0);
  REQUIRE(stat((f.tmp / "volume/app.moved/build-1").c_str(), &ours) == 0);
  CHECK(held.st_ino == ours.st_ino);
}

TEST_CASE("app name: package.json's name, else the app above .next/standalone") {
  TempDir tmp;
  CacheOptions o;
  o.app_dir = tmp / "shop/.next/standalone";
  fs::create_directories(o.app_dir);
  CHECK(knext::cache_app_name(o) == "shop");  // no package.json
  write_file(o.app_dir + "/package.json", R"({"name": "@acme/shop-front", "version": "1.0.0"})");
  CHECK(knext::cache_app_name(o) == "_acme_shop-front");
  write_file(o.app_dir + "/package.json", "{not json");
  CHECK(knext::cache_app_name(o) == "shop");
  write_file(o.app_dir + "/package.json", R"({"name": 7})");
  CHECK(knext::cache_app_name(o) == "shop");
  write_file(o.app_dir + "/package.json",
             "{\"name\": \"big\", \"x\": \"" + std::string(70000, 'a') + "\"}");
  CHECK(knext::cache_app_name(o) == "shop");  // over the size cap
  fs::remove(o.app_dir + "/package.json");
  write_file(tmp / "other.json", R"({"name": "through-a-symlink"})");
  fs::create_symlink(tmp / "other.json", o.app_dir + "/package.json");
  CHECK(knext::cache_app_name(o) == "shop");  // not followed
  o.app_name = "given";
  CHECK(knext::cache_app_name(o) == "given");
}

TEST_CASE("volume root: world-writable needs the sticky bit; group-writable is accepted") {
  Fixture f;
  chmod(f.options.cache_dir.c_str(), 0777);
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kTmp);
  CHECK(p.path == f.tmp / ("tmproot/knext-compile-cache-" + std::to_string(getuid())));
  CHECK(p.reason.find("world-writable without the sticky bit") != std::string::npos);
  CHECK(mode_of(p.path) == 0700);

  chmod(f.options.cache_dir.c_str(), 01777);
  CHECK(place_compile_cache(f.options).source == CacheSource::kVolume);
  chmod(f.options.cache_dir.c_str(), 02775);
  CHECK(place_compile_cache(f.options).source == CacheSource::kVolume);
  REQUIRE(chown(f.options.cache_dir.c_str(), kOtherUid, 0) == 0);
  p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kTmp);
  CHECK(p.reason.find("is owned by uid 65534") != std::string::npos);
}

TEST_CASE("volume: a group-writable app or build directory is refused") {
  Fixture f;
  REQUIRE(place_compile_cache(f.options).source == CacheSource::kVolume);
  chmod((f.tmp / "volume/app").c_str(), 0770);
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kTmp);
  CHECK(p.reason.find(f.tmp / "volume/app: is writable by group or others") != std::string::npos);

  chmod((f.tmp / "volume/app").c_str(), 0700);
  chmod((f.tmp / "volume/app/build-1").c_str(), 0702);
  p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kTmp);
  CHECK(p.reason.find("volume/app/build-1: is writable by group or others") != std::string::npos);
}

TEST_CASE("volume: a directory owned by another uid is refused") {
  Fixture f;
  REQUIRE(place_compile_cache(f.options).source == CacheSource::kVolume);
  REQUIRE(chown((f.tmp / "volume/app/build-1").c_str(), kOtherUid, kOtherUid) == 0);
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kTmp);
  CHECK(p.reason.find("build-1: is owned by uid 65534, not 0") != std::string::npos);

  // The other way round: node runs as 65534, the directories belong to root.
  f.options.app_uid = kOtherUid;
  REQUIRE(chown((f.tmp / "volume/app/build-1").c_str(), 0, 0) == 0);
  p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kTmp);
  CHECK(p.reason.find("volume/app: is owned by uid 0, not 65534") != std::string::npos);
  CHECK(owner_of(p.path) == kOtherUid);  // as root we create the fallback for node's uid
}

TEST_CASE("volume: as root, the directories made for another uid belong to it") {
  Fixture f;
  f.options.app_uid = kOtherUid;
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kVolume);
  CHECK(owner_of(f.tmp / "volume/app") == kOtherUid);
  CHECK(owner_of(p.path) == kOtherUid);
}

TEST_CASE("volume: symlinks at the app or build level are refused") {
  Fixture f;
  fs::create_directories(f.tmp / "elsewhere");
  chmod((f.tmp / "elsewhere").c_str(), 0700);
  fs::create_directories(f.tmp / "volume/app");
  chmod((f.tmp / "volume/app").c_str(), 0700);
  fs::create_directory_symlink(f.tmp / "elsewhere", f.tmp / "volume/app/build-1");
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kTmp);
  CHECK(p.reason.find("volume/app/build-1: is a symlink") != std::string::npos);

  fs::remove(f.tmp / "volume/app/build-1");
  fs::remove(f.tmp / "volume/app");
  fs::create_directory_symlink(f.tmp / "elsewhere", f.tmp / "volume/app");
  p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kTmp);
  CHECK(p.reason.find("volume/app: is a symlink") != std::string::npos);
  CHECK(fs::is_empty(f.tmp / "elsewhere"));
}

TEST_CASE("volume: a read-only mount is refused even for root") {
  Fixture f;
  Tmpfs mount(f.options.cache_dir);
  chmod(f.options.cache_dir.c_str(), 0700);
  REQUIRE(place_compile_cache(f.options).source == CacheSource::kVolume);  // creates the dirs
  mount.make_read_only();
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kTmp);
  CHECK(p.reason.find("Read-only file system") != std::string::npos);
  CHECK(p.volume_dir.empty());
}

TEST_CASE("volume: a full disk is refused") {
  Fixture f;
  Tmpfs mount(f.options.cache_dir);
  chmod(f.options.cache_dir.c_str(), 0700);
  REQUIRE(place_compile_cache(f.options).source == CacheSource::kVolume);
  mount.fill();
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kTmp);
  CHECK(p.reason.find("No space left on device") != std::string::npos);
}

TEST_CASE("tmp fallback: none when even the tmp root is untrusted") {
  Fixture f;
  f.options.cache_dir.clear();
  CHECK(place_compile_cache(f.options).source == CacheSource::kTmp);
  chmod(f.options.tmp_dir.c_str(), 0777);
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kNone);
  CHECK(p.path.empty());
  CHECK(p.reason.find("world-writable without the sticky bit") != std::string::npos);
  CHECK(p.reason.starts_with("none"));
}

TEST_CASE("seed: read while the empty volume is seeded, then the volume is used") {
  Fixture f;
  std::string seed = f.make_seed();
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kSeedReadOnly);
  CHECK(p.path == seed);
  CHECK(p.seeded_from_seed);
  CHECK(p.volume_dir == f.tmp / "volume/app/build-1");

  REQUIRE(knext::seed_volume(p, f.options).ok());
  std::string entry = p.volume_dir + "/" + f.tag() + "/12345678";
  CHECK(read_file(entry) == std::string(5000, 'b'));
  CHECK(read_file(p.volume_dir + "/" + f.tag() + "/0badcafe") == std::string(3000, 'a'));
  CHECK(mode_of(entry) == 0600);
  CHECK(mode_of(p.volume_dir + "/" + f.tag()) == 0700);
  CHECK(mode_of(p.volume_dir) == 0700);
  CHECK_FALSE(has_tmp_copies(f.tmp / "volume/app"));

  auto next = place_compile_cache(f.options);
  CHECK(next.source == CacheSource::kVolume);
  CHECK(next.path == p.volume_dir);
  CHECK_FALSE(next.seeded_from_seed);
  CHECK(knext::seed_volume(next, f.options).ok());  // nothing to do
}

TEST_CASE("seed: as root, the copy for another uid belongs to it") {
  Fixture f;
  f.options.app_uid = kOtherUid;
  f.make_seed();
  auto p = place_compile_cache(f.options);
  REQUIRE(p.seeded_from_seed);
  REQUIRE(knext::seed_volume(p, f.options).ok());
  std::string entry = p.volume_dir + "/" + f.tag() + "/12345678";
  CHECK(owner_of(p.volume_dir) == kOtherUid);
  CHECK(owner_of(p.volume_dir + "/" + f.tag()) == kOtherUid);
  CHECK(owner_of(entry) == kOtherUid);
  CHECK(mode_of(entry) == 0600);
  CHECK(place_compile_cache(f.options).source == CacheSource::kVolume);
}

TEST_CASE("seed: refused without a cache for the app's uid, or when others can write it") {
  Fixture f;
  std::string seed = f.make_seed();
  f.options.app_uid = kOtherUid;  // the seed was baked as root: node's dirs end in -0
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kVolume);
  CHECK(p.reason.find("has no cache for uid 65534") != std::string::npos);

  Fixture g;
  seed = g.make_seed();
  chmod((g.tmp / "seed/app").c_str(), 0775);
  p = place_compile_cache(g.options);
  CHECK(p.source == CacheSource::kVolume);
  CHECK(p.reason.find("seed/app: is writable by group or others") != std::string::npos);
}

TEST_CASE("seed: read-only fallback when the volume is unusable; no copy then") {
  Fixture f;
  std::string seed = f.make_seed();
  Tmpfs ro_seed_mount(f.tmp / "seed2");
  fs::copy(f.tmp / "seed", f.tmp / "seed2", fs::copy_options::recursive);
  chmod((f.tmp / "seed2").c_str(), 0755);  // a fresh tmpfs is 1777
  ro_seed_mount.make_read_only();
  f.options.cache_seed = f.tmp / "seed2";
  chmod(f.options.cache_dir.c_str(), 0777);
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kSeedReadOnly);
  CHECK(p.path == f.tmp / "seed2/app/build-1");
  CHECK_FALSE(p.seeded_from_seed);
  CHECK(p.reason.find("world-writable") != std::string::npos);
  CHECK(knext::seed_volume(p, f.options).ok());
  CHECK_FALSE(fs::exists(f.tmp / "volume/app"));
}

TEST_CASE("seed: a volume that already has the build is used without looking at the seed") {
  Fixture f;
  f.make_seed();
  fs::create_directories(f.tmp / "volume/app/build-1/" + f.tag());
  chmod((f.tmp / "volume/app").c_str(), 0700);
  chmod((f.tmp / "volume/app/build-1").c_str(), 0700);
  auto p = place_compile_cache(f.options);
  CHECK(p.source == CacheSource::kVolume);
  CHECK(p.seed_dir.empty());
  CHECK_FALSE(p.seeded_from_seed);
}

TEST_CASE("seed: concurrent seeding launchers both succeed and leave one complete copy") {
  for (int round = 0; round < 10; ++round) {
    Fixture f;
    f.make_seed();
    auto a = place_compile_cache(f.options);
    auto b = place_compile_cache(f.options);
    REQUIRE(a.seeded_from_seed);
    REQUIRE(b.seeded_from_seed);
    knext::Status sa = knext::Status(knext::Error{"not run"});
    knext::Status sb = sa;
    std::thread ta([&] { sa = knext::seed_volume(a, f.options); });
    std::thread tb([&] { sb = knext::seed_volume(b, f.options); });
    ta.join();
    tb.join();
    CHECK(sa.ok());
    CHECK(sb.ok());
    CHECK(read_file(a.volume_dir + "/" + f.tag() + "/12345678") == std::string(5000, 'b'));
    CHECK(read_file(a.volume_dir + "/" + f.tag() + "/0badcafe") == std::string(3000, 'a'));
    CHECK_FALSE(has_tmp_copies(f.tmp / "volume/app"));
  }
}

TEST_CASE("seed: a copy that fills the disk fails cleanly and leaves the volume empty") {
  Fixture f;
  std::string seed = f.make_seed();
  write_file(seed + "/" + f.tag() + "/deadbeef", std::string(200'000, 'c'));
  Tmpfs mount(f.options.cache_dir);
  chmod(f.options.cache_dir.c_str(), 0700);
  auto p = place_compile_cache(f.options);
  REQUIRE(p.seeded_from_seed);
  auto s = knext::seed_volume(p, f.options);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("No space left on device") != std::string::npos);
  CHECK(s.error().message.find('\n') == std::string::npos);
  CHECK_FALSE(has_tmp_copies(f.tmp / "volume/app"));
  CHECK(fs::is_empty(p.volume_dir));
}

TEST_CASE("placement is cheap enough for the critical path") {
  Fixture f;
  fs::create_directories(f.tmp / "volume/app/build-1/" + f.tag());
  REQUIRE(place_compile_cache(f.options).source == CacheSource::kVolume);
  std::vector<double> us;
  for (int i = 0; i < 200; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto p = place_compile_cache(f.options);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                     .count());
    REQUIRE(p.source == CacheSource::kVolume);
  }
  std::sort(us.begin(), us.end());
  MESSAGE("place_compile_cache, volume has the build: min " << us[0] << " us, median " << us[100]
                                                            << " us, p95 " << us[190] << " us");
  // The design's budget for this step is 2 ms. The fastest run, not the median: other work on
  // the machine (builds journaling to the same disk) can stretch any single run.
  CHECK(us[0] < 1000.0);
}
