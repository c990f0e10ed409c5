// LoopThread: a libuv loop running on its own thread, with a thread-safe post() to run work
// on it. The synchronous client facade is built on it; tests use it to drive Connections.
#pragma once

#include <uv.h>

#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cachetier::client {

class LoopThread {
 public:
  LoopThread();
  // Stops the loop and joins the thread. Every handle the caller created on the loop must
  // have been closed (or be closing) by then.
  ~LoopThread();
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;

  // Runs `fn` on the loop thread, soon. Thread-safe.
  void post(std::function<void()> fn);
  uv_loop_t* loop() { return &loop_; }

 private:
  uv_loop_t loop_{};
  uv_async_t wake_{};
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cachetier::client
