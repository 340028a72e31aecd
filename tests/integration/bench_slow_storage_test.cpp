// SlowStorage: the FUSE passthrough `--bench --slow-storage` runs the app and node from.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench/slow_storage.hpp"
#include "cachewarm/page_cache/page_cache_residency.hpp"
#include "common/boost_process.hpp"
#include "common/fd.hpp"
#include "common/loopback.hpp"
#include "common/process_wait.hpp"
#include "probes/http/curl_api.hpp"
#include "tests/integration/harness.hpp"

namespace bp = boost::process;
namespace fs = std::filesystem;
using namespace knext::test;
using knext::bench::is_mounted;
using knext::bench::SlowStorage;
using knext::bench::SlowStorageOptions;

namespace {

const fs::path kRoot = KNEXT_SOURCE_ROOT;
const fs::path kApp = kRoot / "tests/fixtures/next-app/.next/standalone";
const fs::path kNode = kRoot / ".deps/node/bin/node";

SlowStorageOptions slow(std::chrono::microseconds delay, std::vector<std::string> paths) {
  SlowStorageOptions o;
  o.read_delay = delay;
  o.paths = std::move(paths);
  // Built beside knext-launch; this test binary lives elsewhere.
  o.slowfs_bin = (fs::path(launcher_bin()).parent_path() / "knext-slowfs").string();
  return o;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int open_errno(const std::string& path, int flags) {
  knext::Fd fd(open(path.c_str(), flags | O_CLOEXEC, 0644));
  return fd.valid() ? 0 : errno;
}

// Stops a server at scope exit, before the mount it runs from goes away.
struct StopOnExit {
  bp::child& child;
  ~StopOnExit() {
    if (!child.running()) return;
    ::kill(child.id(), SIGTERM);
    if (!knext::wait_with_timeout(child, std::chrono::seconds(10))) {
      ::kill(child.id(), SIGKILL);
      child.wait();
    }
  }
};

}  // namespace

TEST_CASE("slow storage: cold reads pay the delay, cached ones are served, writes are refused") {
  TempDir scratch;
  auto file = scratch.path() / "data.bin";
  std::string content;
  for (int i = 0; content.size() < 256 * 1024; ++i)
    content += "knext slow storage " + std::to_string(i) + "\n";
  std::ofstream(file, std::ios::binary) << content;

  std::string mountpoint;
  {
    auto storage = SlowStorage::mount(slow(std::chrono::milliseconds(20), {file.string()}));
    REQUIRE_MESSAGE(storage.ok(), storage.error().message);
    mountpoint = storage->mountpoint();
    CHECK(is_mounted(mountpoint));
    CHECK(storage->source() == fs::canonical(scratch.path()).string());
    auto mapped = storage->map(file.string());
    CHECK(mapped == mountpoint + "/data.bin");
    CHECK(storage->map(scratch.path().string()) == mountpoint);
    CHECK(storage->map("/no-such-dir-knext/x") == "/no-such-dir-knext/x");

    // A fresh mount has nothing cached; evicting makes "cold" explicit, as the bench does.
    CHECK(knext::evict_from_page_cache({mapped}).failed == 0);
    auto t0 = std::chrono::steady_clock::now();
    auto cold = read_file(mapped);
    double cold_ms = ms_since(t0);
    CHECK(cold == content);
    CHECK_MESSAGE(cold_ms >= 20.0, "cold read took " << cold_ms << " ms, delay 20 ms");

    auto resident = knext::resident_fraction(mapped);
    REQUIRE_MESSAGE(resident.ok(), resident.error().message);
    CHECK(*resident == doctest::Approx(1.0));
    CHECK(read_file(mapped) == content);

    CHECK(open_errno(mapped, O_WRONLY) == EROFS);
    CHECK(open_errno(mapped, O_RDWR) == EROFS);
    CHECK(open_errno(mountpoint + "/new.txt", O_WRONLY | O_CREAT) == EROFS);
    CHECK(mkdir((mountpoint + "/sub").c_str(), 0755) == -1);
    CHECK(errno == EROFS);
    CHECK(unlink(mapped.c_str()) == -1);
    CHECK(errno == EROFS);
    CHECK(read_file(file) == content);
  }
  CHECK_FALSE(is_mounted(mountpoint));
  CHECK_FALSE(fs::exists(mountpoint));
}

TEST_CASE("slow storage: what cannot be mounted is an error, not a mount") {
  TempDir scratch;
  SUBCASE("knext-slowfs missing") {
    auto o = slow(std::chrono::microseconds(0), {scratch.path().string()});
    o.slowfs_bin = (scratch.path() / "knext-slowfs").string();
    auto storage = SlowStorage::mount(o);
    REQUIRE_FALSE(storage.ok());
    CHECK(storage.error().message.find("knext-slowfs not found") != std::string::npos);
  }
  SUBCASE("the daemon cannot mount: its reason is the error") {
    auto fake = scratch.path() / "knext-slowfs";
    std::ofstream(fake) << "#!/bin/sh\necho 'knext-slowfs: cannot open /dev/fuse: No such file "
                           "or directory' >&2\nexit 1\n";
    fs::permissions(fake, fs::perms::owner_all);
    auto o = slow(std::chrono::microseconds(0), {scratch.path().string()});
    o.slowfs_bin = fake.string();
    auto storage = SlowStorage::mount(o);
    REQUIRE_FALSE(storage.ok());
    CHECK(storage.error().message.find("exited (1)") != std::string::npos);
    CHECK(storage.error().message.find("/dev/fuse: No such file or directory") !=
          std::string::npos);
  }
  SUBCASE("a path outside the source root") {
    auto o = slow(std::chrono::microseconds(0), {"/usr"});
    o.source_root = scratch.path().string();
    auto storage = SlowStorage::mount(o);
    REQUIRE_FALSE(storage.ok());
    CHECK(storage.error().message.find("outside") != std::string::npos);
  }
  SUBCASE("a path that does not exist") {
    auto storage = SlowStorage::mount(
        slow(std::chrono::microseconds(0), {(scratch.path() / "missing").string()}));
    REQUIRE_FALSE(storage.ok());
    CHECK(storage.error().message.find("missing") != std::string::npos);
  }
}

TEST_CASE("slow storage: node runs the fixture app's server.js from the mount") {
  REQUIRE(fs::exists(kApp / "server.js"));
  REQUIRE(fs::exists(kNode));
  auto storage =
      SlowStorage::mount(slow(std::chrono::milliseconds(1), {kApp.string(), kNode.string()}));
  REQUIRE_MESSAGE(storage.ok(), storage.error().message);
  CHECK(storage->source() == fs::canonical(kRoot).string());

  auto port = knext::free_loopback_port();
  REQUIRE(port.ok());
  bp::environment env = boost::this_process::environment();
  env["PORT"] = std::to_string(*port);
  env["HOSTNAME"] = "127.0.0.1";
  bp::child server(bp::exe = storage->map(kNode.string()), bp::args = {"server.js"},
                   bp::start_dir = storage->map(kApp.string()), env, bp::std_out > bp::null,
                   bp::std_err > bp::null);
  StopOnExit stop{server};

  std::string url = "http://127.0.0.1:" + std::to_string(*port) + "/";
  long status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (status == 0 && server.running() && std::chrono::steady_clock::now() < deadline) {
    auto response = knext::http_get(url, 10'000);
    if (response.ok())
      status = response->status;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(status == 200);
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/" + std::to_string(server.id()) + "/exe", ec).string();
  CHECK_MESSAGE(exe.rfind(storage->mountpoint() + "/", 0) == 0, "node runs " << exe);
}
