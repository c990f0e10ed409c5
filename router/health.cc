// Node health. See health.h for the states and what moves a node between them.
#include "router/health.h"

#include <spdlog/spdlog.h>

namespace cachetier::router {

using client::Call;
using client::Reply;
using native::Op;

Reply failed_reply(std::string why) {
  Reply r;
  r.transport = Status(StatusCode::kIoError, std::move(why));
  return r;
}

void note_failure(const RouterConfig& cfg, Node& n, const Reply& r) {
  if (r.timed_out()) {
    n.counters.timeouts.fetch_add(1, std::memory_order_relaxed);
  } else {
    n.counters.errors.fetch_add(1, std::memory_order_relaxed);
  }
  if (n.on_failure(cfg.failure_limit, cfg.retry_ms)) {
    spdlog::warn("node {} marked down ({})", n.addr(), r.transport.message());
  }
}

bool missed_any_key(const Node& n, const Call& call) {
  if (call.op == Op::kMultiGet || call.op == Op::kMultiDelete) {
    for (const auto& k : call.keys) {
      if (n.has_missed(k)) return true;
    }
    return false;
  }
  if (call.op == Op::kMultiSet) {
    for (const auto& [k, v] : call.items) {
      if (n.has_missed(k)) return true;
    }
    return false;
  }
  return n.has_missed(call.key);
}

void note_missed(const RouterConfig& cfg, Node& n, const Call& call) {
  const uint64_t limit = cfg.max_missed_keys;
  if (call.op == Op::kMultiGet || call.op == Op::kMultiDelete) {
    for (const auto& k : call.keys) n.note_missed(k, limit);
  } else if (call.op == Op::kMultiSet) {
    for (const auto& [k, v] : call.items) n.note_missed(k, limit);
  } else {
    n.note_missed(call.key, limit);
  }
}

void HealthChecker::tick(const std::shared_ptr<const Topology>& topo) {
  const int64_t now = now_ms();
  for (size_t si = 0; si < topo->shards.size(); ++si) {
    for (const auto& n : topo->shards[si].replicas) {
      switch (n->state()) {
        case NodeState::kDown:
          if (n->probe_due(now) && !probing_.count(n->addr())) probe(topo, n);
          break;
        case NodeState::kSyncing:
        case NodeState::kUp:
          if (n->overflowed()) {
            if (!emptying_.count(n->addr())) empty_node(topo, n);
          } else if (n->any_missed() && !repairing_.count(n->addr())) {
            repair(topo, si, n);
          } else if (n->state() == NodeState::kSyncing && !repairing_.count(n->addr())) {
            n->set_state(NodeState::kUp);
            spdlog::info("node {} is back in service", n->addr());
          }
          break;
      }
    }
  }
}

// A node that missed more writes than max_missed_keys cannot be repaired key by key: it is
// emptied with flush_all, then serves again as a cold replica that warms from its siblings.
// Reads skip it (has_missed) until the flush has answered and no write to it failed meanwhile
// (that write could have landed before the flush and been lost after it: flush again).
void HealthChecker::empty_node(const std::shared_ptr<const Topology>& topo,
                               const std::shared_ptr<Node>& n) {
  uint64_t misses = n->overflow_misses();
  Call f;
  f.op = Op::kFlush;
  emptying_.insert(n->addr());
  Status st = backends_.send(*n, f, [this, n, topo, misses](Reply&& r) {
    emptying_.erase(n->addr());
    if (!r.transport.is_ok() || r.code != native::Status::kOk) return;  // the next tick retries
    n->start_warmup(now_ms() + topo->config.warmup_ms);
    if (!n->clear_overflow_if(misses)) return;
    n->counters.flushed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("node {} missed more than {} writes: emptied, warming from its siblings",
                 n->addr(), topo->config.max_missed_keys);
  });
  if (!st.is_ok()) emptying_.erase(n->addr());
}

void HealthChecker::probe(const std::shared_ptr<const Topology>& topo,
                          const std::shared_ptr<Node>& n) {
  Call noop;
  noop.op = Op::kNoop;
  probing_.insert(n->addr());
  Status st = backends_.send(*n, noop, [this, n, topo](Reply&& r) {
    probing_.erase(n->addr());
    if (!r.transport.is_ok()) {
      n->probe_failed(topo->config.retry_max_ms);
      return;
    }
    n->on_success();
    n->start_warmup(now_ms() + topo->config.warmup_ms);
    // (An overflowed node is emptied by the next ticks before it serves: empty_node.)
    n->set_state(NodeState::kSyncing);
    spdlog::info("node {} answers again: replaying {} missed keys", n->addr(), n->missed_size());
  });
  if (!st.is_ok()) {
    probing_.erase(n->addr());
    n->probe_failed(topo->config.retry_max_ms);
  }
}

// Replays up to kRepairBatch missed keys on `n`: each is read from a sibling that has it right
// and written to `n` with the sibling's version and CAS (or deleted). Over memcache text (no
// versions) the key is deleted on `n` instead, so that it refills from a sibling on its next
// miss.
void HealthChecker::repair(const std::shared_ptr<const Topology>& topo, size_t shard,
                           const std::shared_ptr<Node>& n) {
  const Shard& s = topo->shards[shard];
  std::vector<std::pair<std::string, uint64_t>> keys = n->take_missed(kRepairBatch);
  if (keys.empty()) return;
  struct Batch {
    size_t left = 0;
  };
  auto batch = std::make_shared<Batch>();
  batch->left = keys.size();
  repairing_.insert(n->addr());
  auto one_done = [this, batch, n]() {
    if (--batch->left == 0) repairing_.erase(n->addr());
  };
  const bool native_backend = topo->config.backend_protocol == client::Protocol::kNative;
  for (const auto& [key, generation] : keys) {
    auto write_to_target = [this, n, key = key, generation = generation, one_done](Call c) {
      if (!n->writable()) return one_done();
      Status st = backends_.send(*n, c, [n, key, generation, one_done](Reply&& r) {
        if (r.transport.is_ok() && r.code != native::Status::kServerError) {
          n->unmiss(key, generation);
          n->counters.repaired.fetch_add(1, std::memory_order_relaxed);
        }
        one_done();
      });
      if (!st.is_ok()) one_done();
    };
    Call del;
    del.op = Op::kDelete;
    del.key = key;
    del.ttl = native::kDefaultTombstoneSeconds;
    if (!native_backend) {
      write_to_target(del);
      continue;
    }
    // A sibling that is up and did not miss this key.
    const Node* source = nullptr;
    for (const auto& m : s.replicas) {
      if (m.get() != n.get() && m->readable() && !m->has_missed(key)) {
        source = m.get();
        break;
      }
    }
    if (source == nullptr) {
      one_done();  // nobody to copy from yet: try again on a later tick
      continue;
    }
    Call get;
    get.op = Op::kGet;
    get.key = key;
    get.options = native::kNoBump;
    Status st = backends_.send(
        *source, get, [this, key = key, del, write_to_target, one_done](Reply&& r) mutable {
          if (!r.transport.is_ok()) return one_done();
          if (r.code == native::Status::kNotFound) {
            del.version = versions_.next();
            return write_to_target(del);
          }
          if (r.code != native::Status::kOk) return one_done();
          Call set;
          set.op = Op::kSet;
          set.key = key;
          set.value = std::move(r.value);
          set.flags = r.flags;
          set.ttl = r.ttl;
          set.version = r.version != 0 ? r.version : versions_.next();
          set.new_cas = r.cas;  // CAS values stay the same on every replica
          write_to_target(set);
        });
    if (!st.is_ok()) one_done();
  }
}

}  // namespace cachetier::router
