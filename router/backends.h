// A worker's connections to the cache nodes: one pipelined client::Connection per node, shared
// by every client connection of that worker. BackendSet is what the routes and the health
// checker see of it, so that routes run unchanged against a fake in unit tests.
//
// A backend connection is never closed because of one client: it is opened when a node joins
// the topology, closed (after its requests' deadline) when the node leaves it, and otherwise
// only re-opened by client::Connection itself when the node drops it.
#pragma once

#include <uv.h>

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/connection.h"
#include "router/topology.h"

namespace cachetier::router {

class BackendSet {
 public:
  virtual ~BackendSet() = default;
  // Queues `call` for node `n`. As client::Connection::send: when it returns an error `done`
  // is never called; otherwise `done` runs exactly once, later, on this thread.
  virtual Status send(const Node& n, const client::Call& call, client::ReplyCallback done) = 0;
  // Requests sent to `n` and not answered yet (the least_outstanding read policy).
  virtual size_t outstanding(const Node& n) const = 0;
  // A liveness probe: on a connection of its own, so that it never waits behind client
  // traffic (a huge multi-get's replies) and its delay is the node's.
  virtual Status send_probe(const Node& n, const client::Call& call, client::ReplyCallback done) {
    return send(n, call, std::move(done));
  }
};

// The worker's BackendSet. Loop thread only.
class Backends final : public BackendSet {
 public:
  // `worker`: the worker's index (where its backend latency is recorded in each Node).
  Backends(uv_loop_t* loop, int worker) : loop_(loop), worker_(worker) {}
  // Where new connections get their TLS context (backend_tls:; unset or null: plaintext).
  void use_tls(std::function<std::shared_ptr<net::TlsContext>()> ctx) { tls_ = std::move(ctx); }
  Backends(const Backends&) = delete;
  Backends& operator=(const Backends&) = delete;

  Status send(const Node& n, const client::Call& call, client::ReplyCallback done) override;
  size_t outstanding(const Node& n) const override;
  Status send_probe(const Node& n, const client::Call& call, client::ReplyCallback done) override;

  // Opens connections to the topology's new nodes; closes those of nodes it no longer has once
  // their requests are done (their deadline at most).
  void adopt(const Topology& topo);
  // Closes every connection (the worker is stopping).
  void close_all();
  // Writes what the requests queued since the last call asked for: one write per node. The
  // worker calls it in its flush phases (uv_prepare and uv_check), before the clients' flush.
  void flush();

 private:
  client::Connection* conn(const Node& n) const {
    return n.id() < by_id_.size() ? by_id_[n.id()] : nullptr;
  }

  void forget(client::Connection* c);  // off the flush list: it is closing

  uv_loop_t* loop_;
  int worker_;
  std::function<std::shared_ptr<net::TlsContext>()> tls_;
  std::vector<client::Connection*> queued_;                     // sent to since the last flush()
  std::unordered_map<std::string, client::Connection*> conns_;  // by node address
  std::unordered_map<std::string, client::Connection*> probe_conns_;  // opened on first use
  client::ConnectionOptions options_for(const Topology& topo, const std::shared_ptr<Node>& n);
  const Topology* topo_ = nullptr;          // the last one adopted
  std::vector<client::Connection*> by_id_;  // by Node::id(), for requests
};

// How long, in timeout_ms, a request may wait behind other requests' replies that are still
// arriving (client::ConnectionOptions::queue_timeout_ms). The closing linger covers it.
inline constexpr uint32_t kQueueTimeoutFactor = 4;

// The frame limit of a backend connection: the largest reply a node sends (its output limit,
// 64 MiB by default) with room for the frame around it.
inline constexpr size_t kBackendMaxFrame = (64u << 20) + (64u << 10);

}  // namespace cachetier::router
