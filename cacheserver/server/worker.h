// A cacheserver worker: one thread, one libuv loop, the connections the main thread hands it,
// and its own counters (one writer each: the worker's thread). See server.h for the data flow.
#pragma once

#include <uv.h>

#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "cacheserver/process/process.h"
#include "common/counter.h"
#include "common/net/sniff.h"

namespace cachetier::server {

class Server;
class Connection;

// Which protocol a connection speaks: decided by its listener, or by its first byte.
enum class Proto : uint8_t { kDetect, kMemcache, kNative };

class Worker {
 public:
  static constexpr size_t kReadChunk = 64 * 1024;

  explicit Worker(Server& server) : server_(server) {}
  ~Worker() { join(); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  // Thread-safe: hands an accepted socket to this worker.
  void hand_over(int fd, Proto proto);
  // Thread-safe: asks the worker to finish its connections and exit its loop.
  void request_stop();
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // Loop thread only.
  process::Counters& counters() { return counters_; }
  Counter& bytes_read() { return bytes_read_; }
  Counter& bytes_written() { return bytes_written_; }
  void note_activity() { ++activity_; }
  Server& server() { return server_; }
  char* read_buffer() { return read_buf_.get(); }
  void attach(Connection* c);
  void detach(Connection* c);

 private:
  void on_wake();
  void run_loop();

  Server& server_;
  uv_loop_t loop_{};
  uv_async_t wake_{};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::pair<int, Proto>> pending_;  // guarded by mu_
  bool stopping_ = false;                       // guarded by mu_
  bool stopping_seen_ = false;                  // loop thread only
  process::Counters counters_;
  Counter bytes_read_, bytes_written_;
  std::unique_ptr<char[]> read_buf_{new char[kReadChunk]};
  Connection* conns_ = nullptr;  // intrusive list of open connections
  uint64_t activity_ = 0;        // reads handled; loop thread only
};

}  // namespace cachetier::server
