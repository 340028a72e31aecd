// Page-cache prewarm on the libuv thread pool, and the residency helpers that check it: real
// files on a real disk (tmpfs cannot evict), evicted, prewarmed, measured with mincore. Where no
// directory is on a disk the tests that evict are skipped (counted and said so), never passed.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cachewarm/page_cache/page_cache_prewarm.hpp"
#include "cachewarm/page_cache/page_cache_residency.hpp"
#include "common/uv_handle.hpp"

namespace fs = std::filesystem;
using knext::PageCachePrewarm;
using knext::PrewarmMethod;
using knext::PrewarmOptions;
using knext::PrewarmReport;

namespace {

constexpr long kTmpfsMagic = 0x01021994;
constexpr long kRamfsMagic = 0x858458f6;

bool on_memory_fs(const std::string& dir) {
  struct statfs st {};
  if (statfs(dir.c_str(), &st) != 0) return true;
  return st.f_type == kTmpfsMagic || st.f_type == kRamfsMagic;
}

// The first disk-backed directory, where POSIX_FADV_DONTNEED really drops pages: /var/tmp, else
// $TMPDIR or /tmp, else the working directory (the build directory); empty when all are in memory.
const fs::path& disk_base() {
  static const fs::path base = [] {
    std::error_code ec;
    for (const fs::path& dir :
         {fs::path("/var/tmp"), fs::temp_directory_path(ec), fs::current_path(ec)}) {
      if (!dir.empty() && !on_memory_fs(dir.string())) return dir;
    }
    return fs::path();
  }();
  return base;
}

// The tests that evict pages need disk_base(): without one they are skipped, visibly (doctest's
// skip decorator, counted as skipped by scripts/test.sh, with this line in the log).
bool no_disk() {
  if (!disk_base().empty()) return false;
  static const bool said = [] {
    std::fprintf(stderr,
                 "skipped: the page cache eviction tests: no disk-backed temp directory "
                 "(/var/tmp, $TMPDIR or /tmp, and the working directory are in memory; tmpfs "
                 "cannot evict)\n");
    return true;
  }();
  return said;
}
const auto kNeedsDisk = doctest::skip(no_disk());

// A scratch directory: on disk_base() for the tests that evict (they are skipped without one),
// else wherever the temp directory is. Not creating it fails the test.
class TestDir {
 public:
  enum class Fs { kDisk, kAny };
  explicit TestDir(Fs where = Fs::kDisk) {
    std::error_code ec;
    fs::path base = where == Fs::kDisk ? disk_base() : fs::temp_directory_path(ec);
    REQUIRE_MESSAGE(!base.empty(), "no temp directory");
    std::string tmpl = (base / "knext-pagecache-test-XXXXXX").string();
    REQUIRE_MESSAGE(mkdtemp(tmpl.data()) != nullptr, tmpl << ": " << std::strerror(errno));
    path_ = tmpl;
  }
  ~TestDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;
  std::string operator/(const std::string& rel) const {
    std::string out = path_;
    out += '/';
    out += rel;
    return out;
  }

 private:
  std::string path_;
};

// Written and fsynced: dirty pages would survive DONTNEED.
std::string make_file(const std::string& path, size_t bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  std::string chunk(64 * 1024, 'k');
  for (size_t done = 0; done < bytes;) {
    size_t n = std::min(chunk.size(), bytes - done);
    REQUIRE(write(fd, chunk.data(), n) == static_cast<ssize_t>(n));
    done += n;
  }
  REQUIRE(fsync(fd) == 0);
  close(fd);
  return path;
}

std::vector<std::string> make_files(const TestDir& dir, size_t count, size_t bytes) {
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) {
    std::string name = "f";
    name += std::to_string(i);
    out.push_back(make_file(dir / name, bytes));
  }
  return out;
}

double resident(const std::string& path) {
  auto r = knext::resident_fraction(path);
  REQUIRE(r.ok());
  return *r;
}

struct RunResult {
  PrewarmReport report;
  int calls = 0;
};

RunResult run_prewarm(std::vector<knext::PrewarmTarget> targets, PrewarmOptions options) {
  knext::UvLoop loop;
  RunResult out;
  {
    PageCachePrewarm prewarm(loop.get(), std::move(options));
    prewarm.start(std::move(targets), [&](const PrewarmReport& r) {
      out.report = r;
      ++out.calls;
    });
    CHECK(out.calls == 0);  // never from inside start()
    CHECK(prewarm.running());
    uv_run(loop.get(), UV_RUN_DEFAULT);
    CHECK_FALSE(prewarm.running());
  }
  return out;
}

RunResult run_prewarm(std::vector<std::string> files, PrewarmOptions options) {
  return run_prewarm(knext::whole_files(std::move(files)), std::move(options));
}

}  // namespace

TEST_CASE("page cache: evict drops a file's pages and a read brings them back" * kNeedsDisk) {
  TestDir dir;
  std::string f = make_file(dir / "one", 1 << 20);
  std::vector<char> buf(1 << 20);
  int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(read(fd, buf.data(), buf.size()) == static_cast<ssize_t>(buf.size()));
  close(fd);
  CHECK(resident(f) > 0.99);
  auto evicted = knext::evict_from_page_cache({f, dir / "missing"});
  CHECK(evicted.evicted == 1);
  CHECK(evicted.failed == 1);
  CHECK(evicted.first_error.find("missing") != std::string::npos);
  CHECK(resident(f) < 0.01);
}

TEST_CASE("page cache: resident_fraction of empty, missing and non-regular files") {
  TestDir dir(TestDir::Fs::kAny);
  CHECK(resident(make_file(dir / "empty", 0)) == 1.0);
  CHECK_FALSE(knext::resident_fraction(dir / "missing").ok());
  CHECK_FALSE(knext::resident_fraction(dir / "").ok());  // the directory
}

TEST_CASE("page cache prewarm: brings evicted files in, in list order with one lane" * kNeedsDisk) {
  TestDir dir;
  auto files = make_files(dir, 6, 512 << 10);
  REQUIRE(knext::evict_from_page_cache(files).evicted == files.size());
  for (const auto& f : files) CHECK(resident(f) < 0.01);

  std::mutex mu;
  std::vector<size_t> begun;
  PrewarmOptions options;
  options.parallelism = 1;
  options.observer = [&](size_t index, bool begin) {
    std::lock_guard<std::mutex> lock(mu);
    if (begin) begun.push_back(index);
  };
  auto run = run_prewarm(files, options);
  CHECK(run.calls == 1);
  CHECK(run.report.files == 6);
  CHECK(run.report.bytes == 6u * (512 << 10));
  CHECK(run.report.skipped == 0);
  CHECK(run.report.failed == 0);
  CHECK_FALSE(run.report.cancelled);
  CHECK(begun == std::vector<size_t>{0, 1, 2, 3, 4, 5});
  for (const auto& f : files) CHECK(resident(f) > 0.99);
}

TEST_CASE("page cache prewarm: the advise method queues the reads; pages arrive" * kNeedsDisk) {
  TestDir dir;
  auto files = make_files(dir, 3, 1 << 20);
  REQUIRE(knext::evict_from_page_cache(files).evicted == files.size());
  PrewarmOptions options;
  options.method = PrewarmMethod::kAdvise;
  auto run = run_prewarm(files, options);
  CHECK(run.report.files == 3);
  CHECK(run.report.bytes == 3u << 20);
  // Advice returns before the data is in: wait for it.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (const auto& f : files) {
    while (resident(f) < 0.99 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(resident(f) > 0.99);
  }
}

// The node binary's lane warms only the pages node mapped when --prewarm recorded them.
TEST_CASE("page cache prewarm: ranges warm only those parts of a file, clipped to its size" *
          kNeedsDisk) {
  TestDir dir;
  std::string file = make_file(dir / "binary", 8 << 20);
  REQUIRE(knext::evict_from_page_cache({file}).evicted == 1);
  PrewarmOptions options;
  options.method = PrewarmMethod::kAdvise;
  auto run = run_prewarm({{file,
                           {{0, 256 << 10},
                            {4 << 20, 512 << 10},
                            {(8 << 20) - (256 << 10), 1 << 20},  // runs past the end
                            {9 << 20, 4096}}}},                  // starts past it
                         options);
  CHECK(run.report.files == 1);
  CHECK(run.report.failed == 0);
  CHECK(run.report.bytes == 1u << 20);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (resident(file) < 0.125 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(resident(file) >= 0.125);  // 1 of 8 MiB
  CHECK(resident(file) < 0.5);     // and not the rest

  // With copies instead of advice the same bytes are counted.
  REQUIRE(knext::evict_from_page_cache({file}).evicted == 1);
  options.method = PrewarmMethod::kRead;
  run = run_prewarm({{file, {{4096, 8192}, {1 << 20, 100}}}}, options);
  CHECK(run.report.files == 1);
  CHECK(run.report.bytes == 8192 + 100);
}

TEST_CASE("page cache prewarm: lanes bound the files in flight and keep list order" * kNeedsDisk) {
  TestDir dir;
  auto files = make_files(dir, 12, 256 << 10);
  REQUIRE(knext::evict_from_page_cache(files).evicted == files.size());
  std::mutex mu;
  size_t in_flight = 0;
  size_t max_in_flight = 0;
  size_t ended = 0;
  bool order_ok = true;
  std::vector<int> seen(files.size(), 0);
  PrewarmOptions options;
  options.parallelism = 2;
  options.observer = [&](size_t index, bool begin) {
    std::unique_lock<std::mutex> lock(mu);
    if (!begin) {
      --in_flight;
      ++ended;
      return;
    }
    ++seen[index];
    // A lane takes the next file only after its last one ended: when file i starts, all but
    // parallelism-1 of the files before it are done.
    if (ended + 1 < index) order_ok = false;
    ++in_flight;
    max_in_flight = std::max(max_in_flight, in_flight);
    // Hold the first file until the second lane has started, so both lanes are seen.
    if (index == 0) {
      lock.unlock();
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (std::chrono::steady_clock::now() < until) {
        {
          std::lock_guard<std::mutex> relock(mu);
          if (in_flight >= 2) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  };
  auto run = run_prewarm(files, options);
  CHECK(run.report.files == 12);
  CHECK(max_in_flight == 2);
  CHECK(order_ok);
  CHECK(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
  for (const auto& f : files) CHECK(resident(f) > 0.99);
}

TEST_CASE("page cache prewarm: files over the remaining budget are skipped, not read" *
          kNeedsDisk) {
  TestDir dir;
  auto files = make_files(dir, 5, 64 << 10);
  files.push_back(make_file(dir / "small", 16 << 10));
  for (size_t lanes : {1, 3}) {
    CAPTURE(lanes);
    REQUIRE(knext::evict_from_page_cache(files).evicted == files.size());
    PrewarmOptions options;
    options.parallelism = lanes;
    options.byte_budget = 160 << 10;
    auto run = run_prewarm(files, options);
    CHECK(run.report.bytes <= options.byte_budget);
    CHECK(run.report.files == 3);    // two of 64 KiB and the 16 KiB one
    CHECK(run.report.skipped == 3);  // 64 KiB each, 32 KiB left
    CHECK(run.report.bytes == (2u * 64 + 16) << 10);
    size_t cached = 0;
    for (const auto& f : files) cached += resident(f) > 0.99 ? 1 : 0;
    CHECK(cached == 3);
    CHECK(resident(files.back()) > 0.99);
    if (lanes == 1) {
      CHECK(resident(files[0]) > 0.99);
      CHECK(resident(files[1]) > 0.99);
      CHECK(resident(files[2]) < 0.01);
    }
  }
}

TEST_CASE("page cache prewarm: cancel stops early and still reports once" * kNeedsDisk) {
  TestDir dir;
  auto files = make_files(dir, 8, 1 << 20);
  REQUIRE(knext::evict_from_page_cache(files).evicted == files.size());
  knext::UvLoop loop;
  std::promise<void> cancelled;
  std::shared_future<void> cancelled_future = cancelled.get_future().share();
  std::atomic<size_t> begun{0};
  PrewarmOptions options;
  options.parallelism = 1;
  options.observer = [&](size_t index, bool begin) {
    if (!begin) return;
    ++begun;
    if (index == 0) cancelled_future.wait_for(std::chrono::seconds(5));
  };
  PrewarmReport report;
  int calls = 0;
  PageCachePrewarm prewarm(loop.get(), options);
  prewarm.start(knext::whole_files(files), [&](const PrewarmReport& r) {
    report = r;
    ++calls;
  });
  // Cancel once the first file has begun (it then waits for the cancel): not after a fixed
  // delay, which a loaded machine can outlast before the thread pool starts the first file.
  knext::Timer timer(loop.get());
  timer.start(1, 1, [&] {
    if (begun == 0) return;
    timer.stop();
    prewarm.cancel();
    cancelled.set_value();
  });
  uv_run(loop.get(), UV_RUN_DEFAULT);
  CHECK(calls == 1);
  CHECK(report.cancelled);
  CHECK(report.files == 0);  // the first file stopped before its first chunk
  CHECK(report.bytes == 0);
  CHECK(begun == 1);
  for (size_t i = 1; i < files.size(); ++i) CHECK(resident(files[i]) < 0.01);
}

TEST_CASE("page cache prewarm: destroyed while running, no callback and the loop ends") {
  TestDir dir(TestDir::Fs::kAny);
  auto files = make_files(dir, 4, 1 << 20);
  knext::UvLoop loop;
  int calls = 0;
  {
    PageCachePrewarm prewarm(loop.get());
    prewarm.start(knext::whole_files(files), [&](const PrewarmReport&) { ++calls; });
  }
  uv_run(loop.get(), UV_RUN_DEFAULT);
  CHECK(calls == 0);
}

TEST_CASE("page cache prewarm: missing files, directories and FIFOs count as failed") {
  TestDir dir(TestDir::Fs::kAny);
  std::string good = make_file(dir / "good", 4096);
  std::string empty = make_file(dir / "empty", 0);
  REQUIRE(mkfifo((dir / "fifo").c_str(), 0600) == 0);
  REQUIRE(mkdir((dir / "sub").c_str(), 0700) == 0);
  auto run = run_prewarm({dir / "missing", dir / "sub", dir / "fifo", good, empty}, {});
  CHECK(run.calls == 1);
  CHECK(run.report.failed == 3);
  CHECK(run.report.files == 2);
  CHECK(run.report.bytes == 4096);
}

TEST_CASE("page cache prewarm: an empty list reports once, from the loop") {
  auto run = run_prewarm(std::vector<std::string>{}, {});
  CHECK(run.calls == 1);
  CHECK(run.report.files == 0);
  CHECK_FALSE(run.report.cancelled);
}

TEST_CASE("page cache prewarm: the file list is produced on the thread pool") {
  TestDir dir(TestDir::Fs::kAny);
  auto files = make_files(dir, 2, 64 << 10);
  knext::UvLoop loop;
  std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id source_thread;
  PrewarmReport report;
  int calls = 0;
  {
    PageCachePrewarm prewarm(loop.get());
    prewarm.start(PageCachePrewarm::TargetSource([&] {
                    source_thread = std::this_thread::get_id();
                    return knext::whole_files(files);
                  }),
                  [&](const PrewarmReport& r) {
                    report = r;
                    ++calls;
                  });
    uv_run(loop.get(), UV_RUN_DEFAULT);
  }
  CHECK(calls == 1);
  CHECK(source_thread != std::thread::id());
  CHECK(source_thread != loop_thread);
  CHECK(report.files == 2);

  // A source that throws: nothing is read, the failure is counted, the process lives on.
  calls = 0;
  {
    PageCachePrewarm prewarm(loop.get());
    prewarm.start(PageCachePrewarm::TargetSource([]() -> std::vector<knext::PrewarmTarget> {
                    throw std::runtime_error("boom");
                  }),
                  [&](const PrewarmReport& r) {
                    report = r;
                    ++calls;
                  });
    uv_run(loop.get(), UV_RUN_DEFAULT);
  }
  CHECK(calls == 1);
  CHECK(report.failed == 1);
  CHECK(report.files == 0);
}
