#pragma once
#include <uv.h>

#include <functional>
#include <memory>

namespace knext {

// A blocking job on the libuv thread pool whose result is applied on the loop thread.
template <class Result>
struct PoolJob {
  uv_work_t req{};
  std::function<Result()> work;
  std::function<void(Result&)> done;
  Result result{};

  static void queue(uv_loop_t* loop, std::function<Result()> work,
                    std::function<void(Result&)> done) {
    auto job = std::make_unique<PoolJob>();
    job->work = std::move(work);
    job->done = std::move(done);
    job->req.data = job.get();
    int rc = uv_queue_work(
        loop, &job->req,
        [](uv_work_t* r) {
          auto* self = static_cast<PoolJob*>(r->data);
          self->result = self->work();
        },
        [](uv_work_t* r, int status) {
          std::unique_ptr<PoolJob> self(static_cast<PoolJob*>(r->data));
          if (status == 0 && self->done) self->done(self->result);
        });
    if (rc == 0) job.release();  // owned by the after-work callback
  }
};

}  // namespace knext
