// Server: the network side of a cache node. The main thread owns the listening sockets and
// the signals; N worker threads (worker.h) each own a libuv loop and the connections handed
// to them (connection.h).
//
//   main loop:  poll(listen fd) -> accept4 -> round-robin -> worker queue + uv_async_send
//   worker:     read -> decoder.feed -> process::handle -> output
//               ... after the whole read batch: ONE write of everything in the output
//
// Backpressure and limits are the connection's (connection.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cacheserver/engine/engine.h"
#include "cacheserver/process/process.h"

namespace cachetier::server {

struct ServerConfig {
  std::string listen = "127.0.0.1";
  int port = 11211;      // 0 = ephemeral; the chosen port is printed on stdout
  int native_port = -1;  // >= 0: also a native-only listener (0 = ephemeral)
  int threads = 4;
  int conn_limit = 1024;
  size_t memory_limit = 64u << 20;
  size_t max_item_size = 1u << 20;
  size_t max_line = 64u << 10;
  size_t output_high_water = 1u << 20;
  size_t output_limit = 64u << 20;
  size_t max_frame = 2u << 20;  // largest native frame body
  int idle_polls = 4;  // non-blocking polls (with a yield) before a worker sleeps; 0 = none
  int verbose = 0;
};

class Worker;

class Server final : public process::StatsSource {
 public:
  // `engine` must outlive the server.
  Server(const ServerConfig& config, engine::Engine& engine);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, starts the workers and serves until SIGTERM or SIGINT; then stops accepting,
  // lets every connection flush what it already has, and returns 0. Returns non-zero if the
  // listening socket cannot be set up.
  int run();

  bool write_stats(std::string_view arg, ByteBuffer& out) override;

  // Called by workers.
  void connection_closed() { curr_connections_.fetch_sub(1, std::memory_order_relaxed); }
  const ServerConfig& config() const { return config_; }
  engine::Engine& engine() { return engine_; }
  std::atomic<int>& verbosity() { return verbosity_; }

 private:
  // Binds and listens on `port`; returns the fd (or -1) and the port it got.
  int open_listener(int port, int* bound);
  void on_acceptable(size_t listener);
  void begin_shutdown();

  ServerConfig config_;
  engine::Engine& engine_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<int> listen_fds_;  // [0] memcache + native by first byte, [1] native only
  std::vector<int> bound_ports_;
  size_t next_worker_ = 0;
  int64_t started_at_ = 0;
  std::atomic<int> verbosity_{0};
  std::atomic<uint64_t> curr_connections_{0};
  std::atomic<uint64_t> total_connections_{0};
  std::atomic<uint64_t> rejected_connections_{0};
  struct Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace cachetier::server
