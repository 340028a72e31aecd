#include "common/uv_handle.hpp"

#include <unistd.h>

#include <string>

#include "common/log.hpp"

namespace knext {

UvLoop::UvLoop() : loop_(std::make_unique<uv_loop_t>()), init_rc_(uv_loop_init(loop_.get())) {}

UvLoop::~UvLoop() {
  if (init_rc_ != 0) return;
  // Close callbacks free the handles; a cancelled thread-pool job (page-cache prewarm) ends at
  // its next check and frees itself from the loop. Give those a few ms, never a wait on a hung
  // read.
  int rc = uv_loop_close(loop_.get());
  for (int i = 0; i < 50 && rc == UV_EBUSY; ++i) {
    if (uv_run(loop_.get(), UV_RUN_NOWAIT) != 0) usleep(1000);
    rc = uv_loop_close(loop_.get());
  }
  if (rc == UV_EBUSY) {
    // Still-open handles or a pool job stuck in a read: the process is exiting, so the loop's
    // memory is left to it rather than freed under them.
    log::warn("event loop: still busy at exit; left open");
    (void)loop_.release();
  }
}

Status UvLoop::init_status() const {
  if (init_rc_ == 0) return ok_status();
  return Error{std::string("event loop: cannot start: ") + uv_strerror(init_rc_), 1};
}

Timer::Timer(uv_loop_t* loop) {
  if (int rc = uv_timer_init(loop, handle_.get()); rc != 0) {
    log::warn(std::string("timer: cannot start: ") + uv_strerror(rc));
    return;
  }
  handle_.mark_initialized();
  handle_.get()->data = on_fire_.get();
}

bool Timer::ready() const {
  return handle_.initialized();
}

void Timer::start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> on_fire) {
  *on_fire_ = std::move(on_fire);
  if (!ready()) return;
  uv_timer_start(
      handle_.get(), [](uv_timer_t* t) { (*static_cast<std::function<void()>*>(t->data))(); },
      timeout_ms, repeat_ms);
}

void Timer::stop() {
  if (ready()) uv_timer_stop(handle_.get());
}

bool Timer::active() {
  return ready() && uv_is_active(handle_.base()) != 0;
}

}  // namespace knext
