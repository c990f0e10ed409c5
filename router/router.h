// cacherouter's lifecycle: the workers (worker.h), the topology they share, reloads.
//
//   start()  -> one listening socket per worker on the same port (SO_REUSEPORT), the workers
//               started, each on its thread
//   reload() -> the config file read again; on success a new topology is published and each
//               worker adopts it on its thread; listen address and threads stay as started
//   stop()   -> every worker closes its listener, clients and backends, and its thread ends
//
// The topology (ring, shards, nodes with their health) is shared by all workers: Node state
// is atomic, the lists are immutable, and a reload keeps the Node objects of addresses that
// stay, so health and missed keys carry over.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/buffer.h"
#include "common/net/auth.h"
#include "router/config.h"
#include "router/discovery.h"
#include "router/topology.h"

namespace cachetier::metrics {
class MetricsSink;
class MetricsEndpoint;
}  // namespace cachetier::metrics

namespace cachetier::router {

class Worker;
struct WorkerStats;

class Router {
 public:
  Router(RouterConfig cfg, std::string config_path);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Binds the port (so callers can print it), starts the workers.
  Status start();
  int port() const { return port_; }
  // metrics_listen: the metrics endpoint's port (0 when off).
  int metrics_port() const;
  // Re-reads the config file; on success the new topology is used for new requests.
  Status reload();
  // discover: names resolved again; a changed set of addresses is applied as a reload. The
  // DNS thread calls it every dns_refresh_ms; true when the topology changed.
  bool refresh_dns();
  // Worker 0's health checker: every node verified once (or its deadline): accept clients.
  void on_verified();
  // Worker 0's health tick: once the migration window of the running topology is over, a
  // topology without it is published (connections to the nodes that left then close). Never
  // blocks: when a reload holds the lock, the next tick tries again.
  void end_migration_if_due();
  // Stops accepting, closes connections, joins the workers.
  void stop();

  // Thread-safe.
  std::shared_ptr<const Topology> topology() const;
  VersionClock& versions() { return versions_; }
  // TLS contexts for new client connections and new backend connections (null when off).
  std::shared_ptr<net::TlsContext> listen_tls() const { return listen_tls_.current(); }
  std::shared_ptr<net::TlsContext> backend_tls() const { return backend_tls_.current(); }
  // auth_file: the clients' credentials (checked only when cfg.auth_file is set).
  const net::AuthFile& auth() const { return auth_; }
  bool auth_required() const { return !cfg_.auth_file.empty(); }
  std::atomic<int64_t>& open_connections() { return open_connections_; }
  // `stats`: the workers' counters summed, then shards and nodes ("STAT" lines, no END).
  void write_stats(ByteBuffer& out) const;
  // Every worker's counters (read from any thread: single-writer counters).
  std::vector<const WorkerStats*> worker_stats() const;
  // One Prometheus scrape (router/metrics.cc), on the metrics endpoint's thread.
  void collect_metrics(metrics::MetricsSink& m) const;

 private:
  // Applies `next` (the file's config, discover names expanded): the checks of a reload, the
  // TLS and auth files read again when `read_files` (a reload; not a DNS change), then a new
  // topology built on the current one. The caller holds apply_mu_.
  Status apply(const RouterConfig& file, RouterConfig next, bool read_files);
  void dns_loop();
  // `file` with its discover names resolved (Discovery::expand), counted and logged. Called
  // before the workers start, or under apply_mu_.
  RouterConfig expand(const RouterConfig& file);
  static Status check_replicas(const RouterConfig& c);

  RouterConfig cfg_;  // as started (discover names expanded); never changed after start()
  // Guarded by apply_mu_: the config running now (the last reload or DNS change, expanded),
  // and the file's as last read (what the DNS thread expands again).
  RouterConfig running_;
  RouterConfig file_cfg_;
  std::string config_path_;
  std::mutex apply_mu_;  // reload() and the DNS thread, one at a time; guards discovery_
  Discovery discovery_;
  std::thread dns_thread_;
  std::mutex dns_mu_;
  std::condition_variable dns_cv_;
  bool dns_stop_ = false;  // guarded by dns_mu_
  std::atomic<uint64_t> dns_refreshes_{0}, dns_changes_{0}, dns_failures_{0};
  net::TlsReloadable listen_tls_, backend_tls_;
  net::AuthFile auth_;
  int port_ = 0;
  int64_t started_ms_ = 0;
  mutable std::mutex topo_mu_;
  std::shared_ptr<const Topology> topo_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  VersionClock versions_;
  std::atomic<int64_t> open_connections_{0};
  std::mutex verified_mu_;
  std::condition_variable verified_cv_;
  bool verified_ = false;
  std::atomic<uint64_t> reloads_{0}, reload_errors_{0};
  std::unique_ptr<metrics::MetricsEndpoint> metrics_;
};

}  // namespace cachetier::router
