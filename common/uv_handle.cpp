#include "common/uv_handle.hpp"

namespace knext {

Timer::Timer(uv_loop_t* loop) {
  uv_timer_init(loop, handle_.get());
  handle_.mark_initialized();
  handle_.get()->data = on_fire_.get();
}

void Timer::start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> on_fire) {
  *on_fire_ = std::move(on_fire);
  uv_timer_start(
      handle_.get(), [](uv_timer_t* t) { (*static_cast<std::function<void()>*>(t->data))(); },
      timeout_ms, repeat_ms);
}

void Timer::stop() {
  uv_timer_stop(handle_.get());
}

bool Timer::active() {
  return uv_is_active(handle_.base()) != 0;
}

}  // namespace knext
