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
#include "cacheserver/server/server.h"
#include "common/counter.h"
#include "common/log_budget.h"
#include "common/metrics/histogram.h"
#include "common/net/sniff.h"

namespace cachetier::server {

class Server;
class Connection;

class Worker {
 public:
  static constexpr size_t kReadChunk = 64 * 1024;

  explicit Worker(Server& server) : server_(server) {}
  ~Worker() { join(); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  // Thread-safe: hands an accepted socket to this worker (`tls`: it speaks TLS).
  void hand_over(int fd, Proto proto, bool tls);
  // Thread-safe: asks the worker to finish its connections and exit its loop.
  void request_stop();
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // Loop thread only.
  process::Counters& counters() { return counters_; }
  Counter& bytes_read() { return bytes_read_; }
  Counter& bytes_written() { return bytes_written_; }
  // Per command family (process::Family): requests' time from their read to their reply.
  metrics::LatencyHistogram& latency(size_t family) { return latency_[family]; }
  // A refused handshake or login worth a log line: at most 10 per second on this worker (a
  // flood is counted exactly, not written out line by line).
  bool may_log_refusal();
  uv_loop_t* loop() { return &loop_; }
  void note_activity() { ++activity_; }
  Server& server() { return server_; }
  char* read_buffer() { return read_buf_.get(); }
  void attach(Connection* c);
  void detach(Connection* c);
  // Thread-safe: memcached's `stats conns` lines for this worker's connections (`now_ms`:
  // uv_now of the caller's loop; the loops' clocks agree to a few ms).
  void write_conns(ByteBuffer& out, uint64_t now_ms) const;

 private:
  void on_wake();
  void run_loop();
  // Closes connections whose TLS handshake has not finished within the timeout.
  void sweep_handshakes();

  Server& server_;
  uv_loop_t loop_{};
  uv_async_t wake_{};
  std::thread thread_;
  std::mutex mu_;
  struct Pending {
    int fd;
    Proto proto;
    bool tls;
  };
  std::vector<Pending> pending_;  // guarded by mu_
  bool stopping_ = false;         // guarded by mu_
  bool stopping_seen_ = false;    // loop thread only
  process::Counters counters_;
  Counter bytes_read_, bytes_written_;
  metrics::LatencyHistogram latency_[process::kFamilies];
  uv_timer_t handshake_timer_{};
  LogBudget tls_log_{10};
  std::unique_ptr<char[]> read_buf_{new char[kReadChunk]};
  Connection* conns_ = nullptr;  // intrusive list of open connections
  mutable std::mutex conns_mu_;  // changes to the list (loop thread), and foreign readers
  uint64_t activity_ = 0;        // reads handled; loop thread only
};

}  // namespace cachetier::server
