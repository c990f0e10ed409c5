// A cacherouter worker: one thread, one libuv loop, its own listening socket on the shared
// port (SO_REUSEPORT), its own backend connections (Backends) and route environment, and the
// client connections the kernel hands it. Replies are written once per loop iteration: after
// the poll phase (replies that backend reads completed) and before the loop blocks again
// (replies that timers completed, e.g. a backend timeout).
//
// Worker 0 also runs the health checker every 20 ms (health.h). A reload publishes a new
// topology (Router::reload); each worker adopts it on its own thread (post_reload), keeping
// every topology it used alive, because requests in flight point at theirs.
#pragma once

#include <uv.h>

#include <memory>
#include <unordered_set>
#include <vector>

#include "common/log_budget.h"
#include "router/backends.h"
#include "router/downstream.h"
#include "router/health.h"
#include "router/routes/env.h"
#include "router/stats.h"

namespace cachetier::router {

class Router;

class Worker {
 public:
  static constexpr size_t kReadBuffer = 64 * 1024;

  Worker(Router& router, int index, int listen_fd);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // On the starting thread, before run(): the loop and its handles.
  void init();
  // The loop, until stopped (on the worker's thread).
  void run();
  // Thread-safe: stop (close everything, end the loop) / adopt the router's new topology.
  void post_stop() { uv_async_send(&stop_async_); }
  void post_reload() { uv_async_send(&reload_async_); }
  // Starts accepting clients (Router::start, once the nodes are verified).
  void post_listen() { uv_async_send(&listen_async_); }

  // Loop thread only, for its connections and routes.
  uv_loop_t* loop() { return &loop_; }
  Router& router() { return router_; }
  const Topology& topo() const { return *topo_; }
  const RouterConfig& cfg() const { return topo_->config; }
  RouteEnv& env() { return env_; }
  WorkerStats& stats() { return stats_; }
  const WorkerStats& stats() const { return stats_; }
  FreeList<Slot>& slots() { return slots_; }
  char* read_buffer() { return read_buf_.get(); }
  void mark_dirty(Downstream* d) {
    ++activity_;
    dirty_.push_back(d);
  }
  void note_activity() { ++activity_; }
  void forget(Downstream* d) { clients_.erase(d); }
  // A refused handshake or login worth a log line: at most 10 per second on this worker (a
  // flood is counted exactly, not written out line by line).
  bool may_log_refusal();
  // backend_tls: (re)builds this worker's client context from the current config's files.
  void renew_backend_tls();
  bool alive(const Downstream* d) const { return clients_.count(const_cast<Downstream*>(d)) > 0; }

 private:
  void on_connection();
  void flush_dirty();
  void adopt_topology();
  void shut_down();
  void start_listening();

  Router& router_;
  const int index_;
  const int listen_fd_;
  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_async_t stop_async_{}, reload_async_{}, listen_async_{};
  bool listening_ = false;
  uv_check_t flush_check_{};
  uv_prepare_t flush_prepare_{};
  uv_timer_t health_timer_{};
  uv_timer_t tls_timer_{};  // with tls:, closes client handshakes past their timeout
  std::shared_ptr<net::TlsContext> backend_tls_;  // backend_tls: this worker's client context
  LogBudget tls_log_{10};
  std::shared_ptr<const Topology> topo_;
  std::vector<std::shared_ptr<const Topology>> kept_;
  Backends backends_;
  RouteEnv env_;
  std::unique_ptr<HealthChecker> health_;  // worker 0
  WorkerStats stats_;
  std::vector<Downstream*> dirty_;
  std::unordered_set<Downstream*> clients_;
  // Spare reply slots (a pipelining client keeps hundreds in flight).
  FreeList<Slot> slots_{4096};
  std::unique_ptr<char[]> read_buf_{new char[kReadBuffer]};
  uint64_t activity_ = 0;  // reads and replies, for the idle polling in run()
  bool stopping_ = false;
};

}  // namespace cachetier::router
