// LoopThread implementation. See loop_thread.h.
#include "client/loop_thread.h"

namespace cachetier::client {

LoopThread::LoopThread() {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &wake_, [](uv_async_t* a) {
    auto* self = static_cast<LoopThread*>(a->data);
    std::vector<std::function<void()>> work;
    bool stop;
    {
      std::lock_guard lock(self->mu_);
      work.swap(self->queue_);
      stop = self->stopping_;
    }
    for (auto& fn : work) fn();
    if (stop) uv_close(reinterpret_cast<uv_handle_t*>(&self->wake_), nullptr);
  });
  wake_.data = this;
  thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
}

LoopThread::~LoopThread() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  uv_async_send(&wake_);
  thread_.join();
  uv_loop_close(&loop_);
}

void LoopThread::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(fn));
  }
  uv_async_send(&wake_);
}

}  // namespace cachetier::client
