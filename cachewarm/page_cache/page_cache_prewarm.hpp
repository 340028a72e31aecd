#pragma once
// Reads the files the first render needs into the page cache while node boots, on the libuv
// thread pool: in list order, `parallelism` files at a time, within a byte budget. Start it
// right after the spawn, never before: reading everything serially first made the cold start
// slower: node waited for files it did not need yet. Node's first-use list beat the larger trace
// list, and pages' traces alone gave nothing: order and precision matter more than volume
// (the trials: README "Page-cache prewarm").
//
// Each of the `parallelism` lanes is one uv_queue_work item that takes the next file from a
// shared counter until the list is done, so the lanes hold that many of libuv's threads
// (UV_THREADPOOL_SIZE, default 4) for the whole prewarm and never wait for the loop thread.
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace knext {

enum class PrewarmMethod {
  // pread into a scratch buffer: when a file is done its pages are in; lanes bound the I/O
  // in flight, so node's own reads queue behind at most `parallelism` of ours.
  kRead,
  // posix_fadvise(POSIX_FADV_WILLNEED) (what readahead(2) does too since Linux 5.4): queues
  // the reads and returns, so lanes do not bound the I/O and "done" does not mean "cached".
  // No better than kRead on the fixture, within the noise.
  kAdvise,
};
const char* prewarm_method_name(PrewarmMethod method);

// A span of a file, in bytes.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const ByteRange&) const = default;
};

// A file to prewarm: all of it, or only the ranges recorded as used (the pages node mapped).
struct PrewarmTarget {
  std::string path;
  std::vector<ByteRange> ranges;  // empty: the whole file
};
std::vector<PrewarmTarget> whole_files(std::vector<std::string> paths);

struct PrewarmOptions {
  size_t parallelism = 2;              // lanes; 0 counts as 1
  uint64_t byte_budget = 64ULL << 20;  // a target bigger than what is left is skipped
  PrewarmMethod method = PrewarmMethod::kRead;
  // Called on a thread-pool thread as each file starts (begin) and ends; for tests and tracing.
  std::function<void(size_t index, bool begin)> observer;
};

struct PrewarmReport {
  size_t files = 0;    // read (or advised) to the end
  uint64_t bytes = 0;  // read (or advised)
  double ms = 0;       // start() to the last lane done
  size_t skipped = 0;  // over the remaining budget
  size_t failed = 0;   // gone, not a regular file, unreadable
  bool cancelled = false;
};

class PageCachePrewarm {
 public:
  using Done = std::function<void(const PrewarmReport&)>;
  // Produces the list; runs on the thread pool (reading a manifest or traces is file I/O too).
  using TargetSource = std::function<std::vector<PrewarmTarget>()>;

  PageCachePrewarm(uv_loop_t* loop, PrewarmOptions options = {});
  // Cancels; the completion callback is not called any more. Reads in flight stop within one
  // chunk; the loop must keep running until they have (their memory is freed on the loop).
  ~PageCachePrewarm();
  PageCachePrewarm(const PageCachePrewarm&) = delete;
  PageCachePrewarm& operator=(const PageCachePrewarm&) = delete;

  // Once per object. `on_done` runs on the loop thread, exactly once (also after cancel()).
  void start(std::vector<PrewarmTarget> targets, Done on_done);
  void start(TargetSource source, Done on_done);
  // No new file starts; a file being read stops at its next chunk.
  void cancel();
  bool running() const;

 private:
  struct State;
  struct Job;
  static void launch_lanes(const std::shared_ptr<State>& state);
  static void make_list(uv_work_t* req);  // thread pool
  static void run_lane(uv_work_t* req);   // thread pool
  static void after_job(uv_work_t* req, int status);

  std::shared_ptr<State> state_;
};

}  // namespace knext
