#pragma once
#include <uv.h>

#include <functional>
#include <memory>

#include "common/expected.hpp"

namespace knext {

// Owns a libuv loop; runs pending close callbacks before closing it. Declare what the loop's
// callbacks touch before the loop, so it outlives the last pass in the destructor.
class UvLoop {
 public:
  UvLoop();
  ~UvLoop();
  UvLoop(const UvLoop&) = delete;
  UvLoop& operator=(const UvLoop&) = delete;
  uv_loop_t* get() { return loop_.get(); }
  // uv_loop_init's result: a loop that failed to start must not be run.
  Status init_status() const;

 private:
  std::unique_ptr<uv_loop_t> loop_;
  int init_rc_ = 0;
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
  bool initialized() const { return initialized_; }

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
  // A timer whose uv_timer_init failed logs that once and never fires.
  explicit Timer(uv_loop_t* loop);
  void start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> on_fire);
  void stop();
  bool active();
  bool ready() const;  // uv_timer_init succeeded

 private:
  UvHandle<uv_timer_t> handle_;
  std::unique_ptr<std::function<void()>> on_fire_ = std::make_unique<std::function<void()>>();
};

}  // namespace knext
