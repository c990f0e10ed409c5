// cacherouter's proxy: worker threads, each with its own libuv loop, its own listening socket
// on the shared port (SO_REUSEPORT) and its own pipelined backend connections
// (client::Connection, one per node). A client connection lives on one worker:
//
//   bytes -> memcache text / native decoder (chosen by the first byte)
//         -> one Slot per request in the connection's in-order queue
//         -> route: shard by ring; read = one replica by policy with failover;
//                   write = every writable replica, with a version
//         -> backend replies fill the slot; replies leave from the head of the queue, in
//            request order, one write per loop iteration
//
// Worker 0 also runs the health timer: probes down nodes with backoff and replays the keys a
// node missed (router/topology.h).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "router/config.h"
#include "router/topology.h"

namespace cachetier::router {

class Worker;

struct RouterStats {
  std::atomic<uint64_t> curr_connections{0}, total_connections{0}, rejected_connections{0},
      cmd_get{0}, cmd_set{0}, get_hits{0}, get_misses{0}, client_errors{0}, reloads{0},
      reload_errors{0};
};

class Router {
 public:
  explicit Router(RouterConfig cfg, std::string config_path);
  ~Router();
  // Binds the port (so callers can print it), starts the workers.
  Status start();
  int port() const { return port_; }
  // Re-reads the config file; on success the new topology is used for new requests.
  Status reload();
  // Stops accepting, closes connections, joins the workers.
  void stop();

  std::shared_ptr<const Topology> topology() const;
  const RouterConfig& startup_config() const { return cfg_; }
  RouterStats& stats() { return stats_; }
  VersionClock& versions() { return versions_; }
  int64_t started_ms() const { return started_ms_; }

 private:
  RouterConfig cfg_;
  std::string config_path_;
  int port_ = 0;
  int64_t started_ms_ = 0;
  mutable std::mutex topo_mu_;
  std::shared_ptr<const Topology> topo_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  RouterStats stats_;
  VersionClock versions_;
};

}  // namespace cachetier::router
