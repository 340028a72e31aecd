// The compile cache as a platform team deploys it: the launcher in front of the real fixture
// Next.js app (Node 24), a cache directory standing in for the mounted volume. Bad volumes are
// made for real: wrong owner, group-writable, a read-only bind mount, a full tmpfs, garbage
// entries. Whatever the volume, the app must start and the log must say why.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <thread>

#include "cachewarm/page_cache/mapped_pages_file.hpp"
#include "cachewarm/page_cache/page_cache_residency.hpp"
#include "common/loopback.hpp"
#include "launcher/compile_cache_setup.hpp"
#include "probes/http/curl_api.hpp"
#include "tests/integration/harness.hpp"

using namespace knext::test;
namespace fs = std::filesystem;

namespace {

const fs::path kRoot = KNEXT_SOURCE_ROOT;
const fs::path kApp = kRoot / "tests/fixtures/next-app/.next/standalone";

std::string build_id() {
  std::ifstream in(kApp / ".next/BUILD_ID");
  std::string id;
  in >> id;
  return id;
}

struct AppRun {
  std::unique_ptr<Launched> launched;
  int port = 0;
};

// Starts the launcher in front of the fixture with `flags`; waits until the gate opened.
AppRun start_app(const std::vector<std::string>& flags) {
  AppRun run;
  run.port = *knext::free_loopback_port();
  std::vector<std::string> args = {"--admin-port=0", "--app-name=fixture"};
  args.insert(args.end(), flags.begin(), flags.end());
  LaunchOptions options;
  options.pid_namespace = false;
  options.cwd = kApp.string();
  options.env = {{"PORT", std::to_string(run.port)},
                 {"HOSTNAME", "127.0.0.1"},
                 {"PATH", (kRoot / ".deps/node/bin").string() + ":" + std::getenv("PATH")}};
  run.launched = std::make_unique<Launched>(args, options);
  return run;
}

// The app served its first page: gate open and GET / answered 200.
void require_serving(AppRun& run) {
  REQUIRE_MESSAGE(run.launched->wait_for_err("phase gate-open", 20s), run.launched->err());
  auto page = knext::http_get("http://127.0.0.1:" + std::to_string(run.port) + "/", 10'000);
  REQUIRE_MESSAGE(page.ok(), page.error().message);
  CHECK(page->status == 200);
}

RunResult stop_app(AppRun& run) {
  run.launched->send(SIGTERM);
  return run.launched->wait(10s);
}

// Start, serve, wait for the flushed cache to be counted, stop: one full cold start.
std::string serve_once(const std::vector<std::string>& flags) {
  auto run = start_app(flags);
  require_serving(run);
  run.launched->wait_for_err("compile cache on disk", 5s);
  auto result = stop_app(run);
  CHECK(result.exit_code == 143);  // Next exits 143 on SIGTERM
  return result.err;
}

// The compile cache's files: node's pages, recorded beside them once, are not cache entries.
std::map<std::string, fs::file_time_type> snapshot(const fs::path& dir) {
  std::map<std::string, fs::file_time_type> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    // Not cache entries: the recorded pages and the traffic record (--learn-paths) change with use.
    auto name = it->path().filename();
    if (it->is_regular_file() && name != "knext-prewarm-pages.txt" && name != "knext-traffic") {
      files[it->path().string()] = it->last_write_time();
    }
  }
  return files;
}

// A directory owned by us with mode 0700: what a trusted volume looks like.
fs::path volume(const TempDir& dir, const std::string& name = "volume") {
  fs::path v = dir.path() / name;
  fs::create_directories(v);
  chmod(v.c_str(), 0700);
  return v;
}

// Mounts and unmounts (RAII) for the read-only and full-disk cases; root only.
class Mount {
 public:
  Mount(const std::string& source, const fs::path& target, const char* type, unsigned long flags,
        const char* data)
      : target_(target) {
    ok_ = ::mount(source.c_str(), target.c_str(), type, flags, data) == 0;
  }
  ~Mount() {
    if (ok_) ::umount2(target_.c_str(), MNT_DETACH);
  }
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;
  bool ok() const { return ok_; }

 private:
  fs::path target_;
  bool ok_ = false;
};

}  // namespace

TEST_CASE("a second start with the cache writes no new entries and finds its build") {
  REQUIRE_MESSAGE(fs::exists(kApp / "server.js"), "run scripts/setup-fixture.sh first");
  std::string mode;
  SUBCASE("node's compile cache") {
    mode = "node";
  }
  SUBCASE("post-warm cache (the default)") {
    mode = "auto";
  }
  CAPTURE(mode);
  TempDir dir;
  auto v = volume(dir);
  std::vector<std::string> flags = {"--cache-dir=" + v.string(), "--compile-cache=" + mode};
  auto first_log = serve_once(flags);
  fs::path build_dir = v / "fixture" / build_id();
  CHECK_MESSAGE(first_log.find("no cache for build") != std::string::npos, first_log);
  auto before = snapshot(build_dir);
  auto cached = knext::count_cache(build_dir.string());
  if (mode == "node") {
    REQUIRE(before.size() > 50);  // node wrote the app's modules, one file each
  } else {
    REQUIRE(cached.bytes > 1'000'000);  // the hook's pack of every module the render ran
  }

  auto second_log = serve_once(flags);
  CHECK_MESSAGE(second_log.find("has build " + build_id()) != std::string::npos, second_log);
  auto after = snapshot(build_dir);
  CHECK(after.size() == before.size());
  int rewritten = 0;
  for (const auto& [path, mtime] : after) {
    auto it = before.find(path);
    if (it == before.end() || it->second != mtime) ++rewritten;
  }
  CHECK_MESSAGE(rewritten == 0, rewritten << " entries were written again: cache misses");
}

// Without a --prewarm bake, the first warm start of a build records node's pages on the volume;
// every later start (cold or not) queues just those instead of the whole binary.
TEST_CASE("a first start records node's pages on the volume; the next start prewarms only those") {
  TempDir dir;
  auto v = volume(dir);
  std::vector<std::string> flags = {"--cache-dir=" + v.string()};
  auto first = start_app(flags);
  require_serving(first);
  CHECK_MESSAGE(first.launched->wait_for_err("from the whole binary (no recorded pages)", 5s),
                first.launched->err());
  REQUIRE_MESSAGE(
      first.launched->wait_for_err("node's pages recorded for the next cold start", 10s),
      first.launched->err());
  stop_app(first);
  auto mapped =
      knext::read_mapped_pages((v / "fixture" / build_id() / "knext-prewarm-pages.txt").string());
  REQUIRE_MESSAGE(mapped.ok(), mapped.error().message);
  std::string node = fs::canonical(kRoot / ".deps/node/bin/node").string();
  CHECK(std::any_of(mapped->begin(), mapped->end(),
                    [&](const knext::MappedFile& f) { return f.path == node; }));

  auto second = start_app(flags);
  require_serving(second);
  CHECK_MESSAGE(second.launched->wait_for_err("from the pages recorded on the cache volume", 5s),
                second.launched->err());
  second.launched->wait_for_err("compile cache on disk", 5s);
  stop_app(second);
  CHECK(second.launched->err().find("node's pages recorded") == std::string::npos);
}

TEST_CASE("a cache built for another build id is not used") {
  TempDir dir;
  auto v = volume(dir);
  fs::path other = v / "fixture" / "some-older-build";
  fs::create_directories(other / "v24.21.0-x64-deadbeef-0");
  std::ofstream(other / "v24.21.0-x64-deadbeef-0" / "12345678") << "stale entry";
  auto log = serve_once({"--cache-dir=" + v.string()});
  CHECK(fs::exists(v / "fixture" / build_id()));
  CHECK_MESSAGE(log.find((v / "fixture" / build_id()).string()) != std::string::npos, log);
  // The other build's entry is untouched (not read, not evicted: it is under the cap).
  CHECK(fs::exists(other / "v24.21.0-x64-deadbeef-0" / "12345678"));
}

TEST_CASE("an unusable volume never stops the app: it falls back and says why, once") {
  TempDir dir;
  std::string flag;
  std::string expect_in_log;
  SUBCASE("missing directory") {
    flag = "--cache-dir=" + (dir.path() / "not-mounted").string();
    expect_in_log = "not-mounted";
  }
  SUBCASE("group-writable app directory") {
    // The volume's root may be group-writable (Kubernetes fsGroup makes it so); the launcher's
    // own directories below it must not be.
    auto v = volume(dir);
    fs::create_directories(v / "fixture");
    chmod((v / "fixture").c_str(), 0770);
    flag = "--cache-dir=" + v.string();
    expect_in_log = "writable";
  }
  SUBCASE("owned by another user") {
    auto v = volume(dir);
    REQUIRE(chown(v.c_str(), 65534, 65534) == 0);
    flag = "--cache-dir=" + v.string();
    expect_in_log = "owned by";
  }
  CAPTURE(flag);
  auto log = serve_once({flag});
  CHECK_MESSAGE(log.find(expect_in_log) != std::string::npos, log);
  int mentions = 0;
  for (const auto& line : lines(log)) {
    if (line.find("compile cache: ") != std::string::npos &&
        line.find("volume") != std::string::npos)
      ++mentions;
  }
  CHECK_MESSAGE(mentions <= 1, log);
}

TEST_CASE("a read-only volume (bind mount) and a full disk (tiny tmpfs) still start the app") {
  TempDir dir;
  auto v = volume(dir);
  SUBCASE("read-only bind mount") {
    Mount bind(v.string(), v, nullptr, MS_BIND, nullptr);
    REQUIRE(bind.ok());
    Mount ro("none", v, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr);
    REQUIRE(ro.ok());
    auto log = serve_once({"--cache-dir=" + v.string()});
    CHECK_MESSAGE(log.find("Read-only file system") != std::string::npos, log);
  }
  SUBCASE("full tmpfs") {
    Mount tmpfs("tmpfs", v, "tmpfs", 0, "size=64k,mode=0700");
    REQUIRE(tmpfs.ok());
    {
      std::ofstream fill(v / "filler", std::ios::binary);
      std::string block(4096, 'x');
      for (int i = 0; i < 64 && fill; ++i) fill << block;
    }
    auto log = serve_once({"--cache-dir=" + v.string()});
    CHECK_MESSAGE(log.find("No space left on device") != std::string::npos, log);
  }
}

TEST_CASE("corrupt cache entries are misses, not failures") {
  TempDir dir;
  auto v = volume(dir);
  serve_once({"--cache-dir=" + v.string()});  // node's entries and the post-warm pack
  int corrupted = 0;
  for (const auto& [path, mtime] : snapshot(v / "fixture" / build_id())) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << "garbage, not a V8 code cache";
    ++corrupted;
  }
  REQUIRE(corrupted >= 3);
  auto run = start_app({"--cache-dir=" + v.string()});
  require_serving(run);
  for (auto path : {"/dynamic", "/list", "/api/health"}) {
    auto page = knext::http_get("http://127.0.0.1:" + std::to_string(run.port) + path, 10'000);
    REQUIRE(page.ok());
    CHECK(page->status == 200);
  }
  stop_app(run);
}

TEST_CASE("two launchers sharing one cache dir both start and leave a valid cache") {
  TempDir dir;
  auto v = volume(dir);
  auto a = start_app({"--cache-dir=" + v.string()});
  auto b = start_app({"--cache-dir=" + v.string()});
  require_serving(a);
  require_serving(b);
  a.launched->wait_for_err("compile cache on disk", 5s);
  b.launched->wait_for_err("compile cache on disk", 5s);
  stop_app(a);
  stop_app(b);
  auto entries = knext::count_cache((v / "fixture" / build_id()).string());
  CHECK(entries.bytes > 1'000'000);
  // The shared cache is good: a third start rewrites nothing.
  auto before = snapshot(v / "fixture" / build_id());
  serve_once({"--cache-dir=" + v.string()});
  CHECK(snapshot(v / "fixture" / build_id()) == before);
}

TEST_CASE("eviction keeps the volume under --cache-max-bytes, oldest builds first") {
  TempDir dir;
  auto v = volume(dir);
  std::string blob(1 << 20, 'c');
  for (int i = 0; i < 3; ++i) {
    fs::path old = v / "fixture" / ("old-build-" + std::to_string(i));
    fs::create_directories(old);
    chmod(old.c_str(), 0700);
    std::ofstream(old / "entry", std::ios::binary) << blob;
    auto when = fs::file_time_type::clock::now() - std::chrono::hours(10 - i);
    fs::last_write_time(old, when);
  }
  auto run = start_app({"--cache-dir=" + v.string(), "--cache-max-bytes=5MiB"});
  require_serving(run);
  run.launched->wait_for_err("compile cache on disk", 5s);
  stop_app(run);
  auto log = run.launched->err();
  CHECK_MESSAGE(log.find("evicted") != std::string::npos, log);
  CHECK_FALSE(fs::exists(v / "fixture" / "old-build-0"));  // the least recently used
  CHECK(fs::exists(v / "fixture" / build_id()));           // never the current build
  uint64_t total = 0;
  for (const auto& [path, mtime] : snapshot(v / "fixture")) total += fs::file_size(path);
  CHECK(total <= 5ull << 20);
}

TEST_CASE("--prewarm bakes a seed that a fresh volume is then filled from") {
  TempDir dir;
  fs::path seed = dir.path() / "image-cache";
  LaunchOptions options;
  options.pid_namespace = false;
  options.cwd = kApp.string();
  options.env = {{"PATH", (kRoot / ".deps/node/bin").string() + ":" + std::getenv("PATH")}};

  auto baked = run_launcher({"--prewarm", "--cache-seed=" + seed.string(), "--app-name=fixture",
                             "--warm-path=/", "--warm-path=/dynamic"},
                            options, 60s);
  // --prewarm records the page-cache manifest, node's mapped pages and the warm-up record inside
  // the app (as an image build would). All three go at the end: a record left in the shared
  // fixture would change what later suites' auto warm-up and the bench do.
  struct RemoveAtEnd {
    fs::path path;
    ~RemoveAtEnd() {
      std::error_code ec;
      fs::remove(path, ec);
    }
  } manifest{kApp / ".next/knext-prewarm-manifest.txt"},
      pages{kApp / ".next/knext-prewarm-pages.txt"}, record{kApp / ".next/knext-warm-record.json"};
  REQUIRE_MESSAGE(baked.exit_code == 0, baked.err);
  CHECK_MESSAGE(baked.out.find("check run recompiled 0") != std::string::npos, baked.out);
  auto recorded = read_file(manifest.path);
  CHECK(recorded.rfind("# knext-prewarm-manifest v1\n# build-id " + build_id(), 0) == 0);
  CHECK(lines(recorded).size() > 100);
  CHECK(recorded.find((kApp / "server.js").string()) != std::string::npos);
  auto entries = knext::count_cache((seed / "fixture" / build_id()).string());
  CHECK(entries.bytes > 1'000'000);
  auto mapped = knext::read_mapped_pages(pages.path.string());
  REQUIRE_MESSAGE(mapped.ok(), mapped.error().message);
  std::string node = fs::canonical(kRoot / ".deps/node/bin/node").string();
  auto node_pages = std::find_if(mapped->begin(), mapped->end(),
                                 [&](const knext::MappedFile& f) { return f.path == node; });
  REQUIRE(node_pages != mapped->end());
  // Part of the binary, not all of it: what booting and the warm-up touched.
  CHECK(knext::total_bytes(node_pages->ranges) > (4u << 20));
  CHECK(knext::total_bytes(node_pages->ranges) < node_pages->size);

  auto v = volume(dir);
  auto run = start_app({"--cache-dir=" + v.string(), "--cache-seed=" + seed.string()});
  require_serving(run);
  CHECK(run.launched->wait_for_err("copied the image's cache", 5s));
  CHECK(run.launched->wait_for_err("from the --prewarm manifest", 5s));
  CHECK(run.launched->wait_for_err("from the pages --prewarm recorded", 5s));
  stop_app(run);
  CHECK_MESSAGE(run.launched->err().find("seed") != std::string::npos, run.launched->err());
  CHECK(knext::count_cache((v / "fixture" / build_id()).string()).entries == entries.entries);

  // The same manifest as if baked with the app elsewhere (/elsewhere/...): not used.
  std::string moved;
  for (const auto& line : lines(recorded)) {
    moved += (line.rfind(kApp.string(), 0) == 0 ? "/elsewhere" + line : line) + "\n";
  }
  { std::ofstream(manifest.path, std::ios::trunc) << moved; }
  // And node's pages as if recorded for another node binary (another mtime): the whole binary.
  node_pages->mtime_ns += 1;
  REQUIRE(knext::write_mapped_pages(pages.path.string(), *mapped).ok());
  auto elsewhere = start_app({"--cache-dir=" + v.string()});
  require_serving(elsewhere);
  CHECK_MESSAGE(
      elsewhere.launched->wait_for_err("(the manifest is for another build or directory)", 5s),
      elsewhere.launched->err());
  CHECK_MESSAGE(elsewhere.launched->wait_for_err(
                    "from the whole binary (the recorded pages are for another node binary)", 5s),
                elsewhere.launched->err());
  stop_app(elsewhere);
}

TEST_CASE("--prewarm without --cache-seed, or with an app that fails, exits non-zero with a line") {
  LaunchOptions options;
  options.pid_namespace = false;
  auto no_seed = run_launcher({"--prewarm"}, options);
  CHECK(no_seed.exit_code == 2);
  REQUIRE(lines(no_seed.err).size() == 1);
  CHECK(no_seed.err.find("--cache-seed") != std::string::npos);

  TempDir dir;
  auto failing = run_launcher({"--prewarm", "--cache-seed=" + (dir.path() / "s").string(),
                               "--warm-timeout=2s", "--", "sh", "-c", "exit 3"},
                              options, 20s);
  CHECK(failing.exit_code == 1);
  CHECK_MESSAGE(failing.err.find("--prewarm: the app did not warm up") != std::string::npos,
                failing.err);
}

// The page-cache prewarm as the launcher runs it: on a cold page cache it queues Next's traced
// files (this fixture has no --prewarm manifest) and the node binary; on a warm one it samples
// the list, finds it cached and queues none of it.
TEST_CASE("page-cache prewarm: files queued on a cold page cache, nothing on a warm one") {
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(kApp)) {
    if (entry.is_regular_file()) files.push_back(entry.path().string());
  }
  REQUIRE(knext::evict_from_page_cache(files).failed == 0);
  auto cold = start_app({"--compile-cache=off"});
  require_serving(cold);
  CHECK_MESSAGE(cold.launched->wait_for_err("phase page-cache-prewarmed", 5s),
                cold.launched->err());
  CHECK(cold.launched->err().find("from Next's .nft.json traces") != std::string::npos);
  stop_app(cold);

  auto warm = start_app({"--compile-cache=off"});
  require_serving(warm);
  CHECK_MESSAGE(warm.launched->wait_for_err("all sampled files already in the page cache", 5s),
                warm.launched->err());
  CHECK(warm.launched->err().find("phase page-cache-prewarmed") == std::string::npos);
  stop_app(warm);
}
