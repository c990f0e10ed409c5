// A worker's backend connections. See backends.h.
#include "router/backends.h"

#include <algorithm>
#include <unordered_set>

namespace cachetier::router {

Status Backends::send(const Node& n, const client::Call& call, client::ReplyCallback done) {
  client::Connection* c = conn(n);
  if (c == nullptr) return Status(StatusCode::kIoError, "no connection");
  Status s = c->send(call, std::move(done));
  if (c->take_queued()) queued_.push_back(c);
  return s;
}

void Backends::flush() {
  // A flush may fail a connection and run reply callbacks that send again: take the list.
  std::vector<client::Connection*> now;
  now.swap(queued_);
  for (client::Connection* c : now) c->flush_queued();
  if (queued_.empty()) {  // keep the longer list's capacity
    now.clear();
    queued_.swap(now);
  }
}

void Backends::forget(client::Connection* c) {
  queued_.erase(std::remove(queued_.begin(), queued_.end(), c), queued_.end());
}

size_t Backends::outstanding(const Node& n) const {
  client::Connection* c = conn(n);
  return c == nullptr ? SIZE_MAX : c->in_flight();
}

client::ConnectionOptions Backends::options_for(const Topology& topo,
                                                const std::shared_ptr<Node>& n) {
  client::ConnectionOptions o;
  o.host = n->host();
  o.port = n->port();
  o.protocol = topo.config.backend_protocol;
  o.timeout_ms = topo.config.timeout_ms;
  // One connection per node carries every client's requests: a request queued behind a huge
  // multi-get's replies, while they are still arriving, is not a node's failure (up to 4x
  // timeout_ms from its send; a node that goes silent still times out after timeout_ms).
  o.queue_timeout_ms = kQueueTimeoutFactor * topo.config.timeout_ms;
  o.max_frame = kBackendMaxFrame;
  o.defer_flush = true;  // flush() below, once per loop phase
  o.tls = tls_ ? tls_() : nullptr;
  o.tls_server_name = topo.config.backend_tls_options.server_name;
  o.auth_user = topo.config.backend_user;
  o.auth_password = topo.config.backend_password;
  o.heard_ms = &n->heard_ms;  // every worker's reads count as hearing from the node
  o.latency = &n->backend_latency(worker_);
  // A restarted node is picked up about as fast as a down one is probed.
  o.reconnect_max_ms = std::max<uint32_t>(o.reconnect_min_ms, topo.config.retry_ms);
  // A connection that comes back means the node may have restarted empty: from now on,
  // misses on it are retried on a sibling and back-filled (on every worker, at once).
  o.on_reconnect = [node = n, warmup_ms = topo.config.warmup_ms] {
    node->start_warmup(now_ms() + warmup_ms);
  };
  // A name that does not resolve (yet) is retried like a refused connection, and counted.
  o.on_resolve_failure = [node = n] {
    node->counters.resolve_failures.fetch_add(1, std::memory_order_relaxed);
  };
  return o;
}

Status Backends::send_probe(const Node& n, const client::Call& call, client::ReplyCallback done) {
  if (topo_ == nullptr) return Status(StatusCode::kIoError, "no connection");
  auto it = probe_conns_.find(n.addr());
  if (it == probe_conns_.end()) {
    for (const Shard& s : topo_->shards) {
      for (const auto& m : s.replicas) {
        if (m.get() != &n) continue;
        client::ConnectionOptions o = options_for(*topo_, m);
        o.on_reconnect = nullptr;  // the data connection says when the node restarted
        o.latency = nullptr;       // probes are not requests: their delay is health.cc's
        o.on_resolve_failure = nullptr;
        o.queue_timeout_ms = 0;  // a probe waits behind nothing
        it = probe_conns_.emplace(n.addr(), client::Connection::create(loop_, o)).first;
      }
    }
    if (it == probe_conns_.end()) return Status(StatusCode::kIoError, "not in the topology");
  }
  client::Connection* c = it->second;
  if (!c->connected()) return send(n, call, std::move(done));  // (connecting: the data one)
  Status s = c->send(call, std::move(done));
  if (c->take_queued()) queued_.push_back(c);
  return s;
}

void Backends::adopt(const Topology& topo) {
  topo_ = &topo;
  std::unordered_set<std::string> wanted;
  // The nodes of the topology, and in a migration window those of the one before it (moved
  // keys are read from their previous owners).
  std::vector<const std::vector<Shard>*> lists = {&topo.shards};
  if (topo.migration != nullptr) lists.push_back(&topo.migration->from->shards);
  for (const auto* shards : lists) {
    for (const Shard& s : *shards) {
      for (const auto& n : s.replicas) {
        wanted.insert(n->addr());
        if (conns_.count(n->addr())) continue;
        client::ConnectionOptions o = options_for(topo, n);
        conns_[n->addr()] = client::Connection::create(loop_, o);
      }
    }
  }
  // The request path finds a connection by Node::id(); a node that left has none.
  by_id_.assign(by_id_.size(), nullptr);
  for (const auto* shards : lists) {
    for (const Shard& s : *shards) {
      for (const auto& n : s.replicas) {
        if (n->id() >= by_id_.size()) by_id_.resize(n->id() + 1, nullptr);
        by_id_[n->id()] = conns_[n->addr()];
      }
    }
  }
  const uint64_t linger_ms = uint64_t{topo.config.timeout_ms} * kQueueTimeoutFactor + 100;
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    // Closed once the requests on it are done: a timer owns it until then, and frees itself.
    auto* t = new uv_timer_t;
    uv_timer_init(loop_, t);
    t->data = new std::pair<Backends*, client::Connection*>(this, it->second);
    uv_timer_start(
        t,
        [](uv_timer_t* h) {
          auto* bc = static_cast<std::pair<Backends*, client::Connection*>*>(h->data);
          bc->first->forget(bc->second);
          bc->second->close();
          delete bc;
          uv_close(reinterpret_cast<uv_handle_t*>(h),
                   [](uv_handle_t* x) { delete reinterpret_cast<uv_timer_t*>(x); });
        },
        linger_ms, 0);
    it = conns_.erase(it);
  }
  for (auto it = probe_conns_.begin(); it != probe_conns_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    forget(it->second);
    it->second->close();  // (probes are noops: nothing is lost)
    it = probe_conns_.erase(it);
  }
}

void Backends::close_all() {
  for (auto& [addr, c] : conns_) c->close();
  for (auto& [addr, c] : probe_conns_) c->close();
  probe_conns_.clear();
  queued_.clear();
  conns_.clear();
  by_id_.clear();
}

}  // namespace cachetier::router
