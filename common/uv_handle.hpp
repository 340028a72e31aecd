#pragma once
#include <unistd.h>
#include <uv.h>

#include <functional>
#include <memory>

namespace knext {

// Owns a libuv loop; runs pending close callbacks before closing it.
class UvLoop {
 public:
  UvLoop() : loop_(std::make_unique<uv_loop_t>()) { uv_loop_init(loop_.get()); }
  ~UvLoop() {
    // Close callbacks free the handles; a cancelled thread-pool job (page-cache prewarm) ends
    // at its next check and frees itself from the loop. Give those a few ms, never a wait on
    // a hung read.
    for (int i = 0; i < 50 && uv_loop_close(loop_.get()) == UV_EBUSY; ++i) {
      if (uv_run(loop_.get(), UV_RUN_NOWAIT) != 0) usleep(1000);
    }
  }
  UvLoop(const UvLoop&) = delete;
  UvLoop& operator=(const UvLoop&) = delete;
  uv_loop_t* get() { return loop_.get(); }

 private:
  std::unique_ptr<uv_loop_t> loop_;
};

// Owns one libuv handle. libuv frees nothing itself and needs the memory until the close
// callback, so ownership passes to that callback.
template <class H>
class UvHandle {
 public:
  UvHandle() : handle_(std::make_unique<H>()) {}
  UvHandle(UvHandle&&) noexcept = default;
  UvHandle& operator=(UvHandle&&) noexcept = default;
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  ~UvHandle() { close(); }

  H* get() { return handle_.get(); }
  uv_handle_t* base() { return reinterpret_cast<uv_handle_t*>(handle_.get()); }
  // Call after the handle's uv_*_init succeeded; only initialised handles need uv_close.
  void mark_initialized() { initialized_ = true; }

  void close() {
    if (!handle_) return;
    if (!initialized_) {
      handle_.reset();
      return;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(handle_.release()),
             [](uv_handle_t* h) { std::unique_ptr<H> owned(reinterpret_cast<H*>(h)); });
  }

 private:
  std::unique_ptr<H> handle_;
  bool initialized_ = false;
};

// A timer whose callback is a std::function.
class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  void start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> on_fire);
  void stop();
  bool active();

 private:
  UvHandle<uv_timer_t> handle_;
  std::unique_ptr<std::function<void()>> on_fire_ = std::make_unique<std::function<void()>>();
};

}  // namespace knext
