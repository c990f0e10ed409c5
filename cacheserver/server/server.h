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
#include "common/net/auth.h"
#include "common/net/tls.h"

namespace cachetier::metrics {
class MetricsSink;
class MetricsEndpoint;
}  // namespace cachetier::metrics

namespace cachetier::server {

// One listening address (-l, memcached's syntax: [notls:]HOST[:PORT], IPv6 as [ADDR]:PORT).
struct ListenAddr {
  std::string host;
  int port = -1;       // -1: the -p port
  bool notls = false;  // plaintext even with -Z
};

// Parses -l's comma-separated list into `out`; false (and `error` says why) on a bad entry.
bool parse_listen(const std::string& spec, std::vector<ListenAddr>& out, std::string& error);

struct ServerConfig;
// Parses one -o list (KEY=VALUE,...) into `cfg` (the ssl_* options and
// ssl_handshake_timeout_ms); `tls_given` is set when an ssl_* option was. False (and `error`
// says why) on an unknown key or a bad value.
bool parse_extended(const std::string& list, ServerConfig& cfg, bool& tls_given,
                    std::string& error);

struct ServerConfig {
  std::string listen = "127.0.0.1";  // used when `listen_addrs` is empty
  std::vector<ListenAddr> listen_addrs;
  int port = 11211;      // 0 = ephemeral; the chosen port is printed on stdout
  int native_port = -1;  // >= 0: also a native-only listener (0 = ephemeral)
  int resp_port = -1;    // >= 0: also a RESP-only listener (inline commands too)
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
  // -Z: listeners speak TLS (but those marked notls); -o ssl_* fill tls_options.
  bool tls = false;
  net::TlsOptions tls_options;
  int tls_handshake_timeout_ms = 10000;  // a connection still handshaking then is closed
  // -Y: memcached's ASCII authentication from this file of user:password lines.
  std::string auth_file;
  int auth_max_failures = 5;  // failed attempts after which a connection is closed
  bool flush_enabled = true;  // -F turns flush_all off
  // --metrics-port (>= 0; 0 = ephemeral) on --metrics-listen (default: the first -l host):
  // Prometheus's GET /metrics (metrics.cc). -1: off.
  int metrics_port = -1;
  std::string metrics_listen;
  // --debug-clock: the engine's clock, which RESP's DEBUG ADVANCE-CLOCK moves (tests only).
  OffsetClock* debug_clock = nullptr;
};

class Worker;

// Which protocol a connection speaks: decided by its listener, or by its first byte.
// kDetect: memcache text, native (magic byte) or RESP ('*') by the first byte.
enum class Proto : uint8_t { kDetect, kMemcache, kNative, kResp };

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
  // `field` summed over the workers (thread-safe: single-writer counters).
  uint64_t total(Counter process::Counters::*field) const;
  // One Prometheus scrape (metrics.cc); called on the metrics endpoint's thread.
  void collect_metrics(metrics::MetricsSink& m);
  // Rebuilds the TLS context from its files (SIGHUP, refresh_certs); connections keep theirs.
  Status refresh_certs() override;
  // The TLS context new connections get (null without -Z).
  std::shared_ptr<net::TlsContext> tls_context() const { return tls_.current(); }
  // -Y: the credentials (empty: no authentication).
  bool auth_required() const { return !config_.auth_file.empty(); }
  const net::AuthFile& auth() const { return auth_; }

  // Called by workers.
  void connection_closed() { curr_connections_.fetch_sub(1, std::memory_order_relaxed); }
  const ServerConfig& config() const { return config_; }
  engine::Engine& engine() { return engine_; }
  // The first listener's port (INFO's tcp_port), and a new RESP client id (CLIENT ID).
  int main_port() const { return listeners_.empty() ? 0 : listeners_[0].port; }
  uint64_t next_client_id() { return next_client_id_.fetch_add(1, std::memory_order_relaxed); }
  std::atomic<int>& verbosity() { return verbosity_; }

 private:
  // Binds and listens on `port`; returns the fd (or -1) and the port it got.
  int open_listener(const std::string& host, int port, int* bound);
  void on_acceptable(size_t listener);
  void begin_shutdown();
  void on_sighup();

  ServerConfig config_;
  engine::Engine& engine_;
  std::vector<std::unique_ptr<Worker>> workers_;
  struct Listening {
    int fd = -1;
    int port = 0;
    std::string host;
    Proto proto = Proto::kDetect;  // kDetect: memcache + native by first byte
    bool tls = false;
  };
  std::vector<Listening> listeners_;
  net::TlsReloadable tls_;
  net::AuthFile auth_;
  size_t next_worker_ = 0;
  int64_t started_at_ = 0;
  std::atomic<int> verbosity_{0};
  std::atomic<uint64_t> next_client_id_{1};
  std::atomic<uint64_t> curr_connections_{0};
  std::atomic<uint64_t> total_connections_{0};
  std::atomic<uint64_t> rejected_connections_{0};
  struct Loop;
  std::unique_ptr<Loop> loop_;
  std::unique_ptr<metrics::MetricsEndpoint> metrics_;
};

}  // namespace cachetier::server
