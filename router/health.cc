// Node health. See health.h for the states and what moves a node between them.
#include "router/health.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "router/hints.h"

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
  const RouterConfig& cfg = topo->config;
  for (size_t si = 0; si < topo->shards.size(); ++si) {
    for (const auto& n : topo->shards[si].replicas) {
      Watch& w = watch_[n->addr()];
      liveness(topo, n, w, now);
      switch (n->state()) {
        case NodeState::kDown:
          if (n->probe_due(now) && !probing_.count(n->addr())) probe(topo, n);
          break;
        case NodeState::kSyncing:
        case NodeState::kUp:
          if (n->overflowed()) {
            if (!emptying_.count(n->addr())) empty_node(topo, si, n);
          } else if (n->any_missed() && !repairing_.count(n->addr())) {
            repair(topo, si, n);
          }
          if (w.draining) break;
          if (n->state() == NodeState::kSyncing) {
            const bool is_late = late(w, now, cfg);
            if (!is_late && w.clean && w.clean_began > w.settle_until && !n->any_missed() &&
                !n->overflowed() && !repairing_.count(n->addr()) && !emptying_.count(n->addr())) {
              n->set_state(NodeState::kUp);
              spdlog::info("node {} is in sync: back in service", n->addr());
            } else if (!is_late) {
              drain(topo, si, n);
            }
          } else if (cfg.hint_poll_ms != 0 && now >= w.next_poll) {
            w.next_poll = now + cfg.hint_poll_ms;
            drain(topo, si, n);  // a hint found makes it kSyncing (resync.cc)
          }
          break;
      }
    }
  }
  check_verified(topo, now);
}

void HealthChecker::check_verified(const std::shared_ptr<const Topology>& topo, int64_t now) {
  if (!on_verified_) return;
  if (verify_deadline_ == 0) {
    // Long enough to mark a dead node down (its probes time out failure_limit times).
    verify_deadline_ = now + int64_t{topo->config.timeout_ms} * (topo->config.failure_limit + 2) +
                       int64_t{topo->config.probe_ms} * topo->config.failure_limit;
  }
  bool all = true;
  for (const Shard& s : topo->shards) {
    for (const auto& n : s.replicas) all = all && n->state() != NodeState::kSyncing;
  }
  if (all || now >= verify_deadline_) {
    auto f = std::move(on_verified_);
    on_verified_ = nullptr;
    f();
  }
}

// Every node not down is probed when it has not answered one for probe_ms; a probe that is
// late by suspect_ms keeps reads off the node until it is heard again, has settled and is
// known to be in sync.
void HealthChecker::liveness(const std::shared_ptr<const Topology>& topo,
                             const std::shared_ptr<Node>& n, Watch& w, int64_t now) {
  const RouterConfig& cfg = topo->config;
  if (n->state() == NodeState::kDown) {
    w.probe_sent = 0;
    return;
  }
  if (w.probe_sent != 0) {
    if (late(w, now, cfg)) {
      if (n->state() == NodeState::kUp) {
        n->set_state(NodeState::kSyncing);
        spdlog::warn(
            "node {} has not answered for {} ms: reads go to its siblings until it is "
            "back and in sync",
            n->addr(), now - w.probe_sent);
      }
      w.settle_until = std::max(w.settle_until, now + int64_t{cfg.settle_ms});
      w.clean = false;
    }
    return;
  }
  if (now - w.last_heard < cfg.probe_ms) return;
  Call noop;
  noop.op = Op::kNoop;
  w.probe_sent = now;
  const std::string addr = n->addr();
  Status st = backends_.send_probe(*n, noop, [this, n, topo, addr](Reply&& r) {
    auto it = watch_.find(addr);
    if (it == watch_.end()) return;
    it->second.probe_sent = 0;
    if (!r.transport.is_ok()) {
      // A probe that timed out while the node was sending (to some worker) is queued behind
      // work: not a failure that counts towards marking it down (it is out of reads anyway).
      const bool heard =
          now_ms() - n->heard_ms.load(std::memory_order_relaxed) < int64_t{topo->config.suspect_ms};
      if (!(r.timed_out() && heard)) note_failure(topo->config, *n, r);
      return;
    }
    it->second.last_heard = now_ms();
    n->on_success();
  });
  if (!st.is_ok()) {  // not connected (refused, or its name does not resolve)
    w.probe_sent = 0;
    note_failure(cfg, *n, failed_reply(n->addr() + ": " + st.message()));
  }
}

// A node that missed more writes than max_missed_keys (or whose hint list overflowed on a
// sibling) cannot be repaired key by key: it is emptied with flush_all, then serves again as
// a cold replica that warms from its siblings. Reads skip it until the flush has answered and
// no write to it failed meanwhile (that write could have landed before the flush and been
// lost after it: flush again).
void HealthChecker::empty_node(const std::shared_ptr<const Topology>& topo, size_t shard,
                               const std::shared_ptr<Node>& n) {
  uint64_t misses = n->overflow_misses();
  Call f;
  f.op = Op::kFlush;
  emptying_.insert(n->addr());
  n->set_state(NodeState::kSyncing);
  Status st = backends_.send(*n, f, [this, n, topo, shard, misses](Reply&& r) {
    emptying_.erase(n->addr());
    if (!r.transport.is_ok() || r.code != native::Status::kOk) return;  // the next tick retries
    n->start_warmup(now_ms() + topo->config.warmup_ms);
    if (!n->clear_overflow_if(misses)) return;
    n->counters.flushed.fetch_add(1, std::memory_order_relaxed);
    // The overflow markers for it are answered: drop them, and its lists, on the siblings.
    Watch& w = watch_[n->addr()];
    for (const auto& m : topo->shards[shard].replicas) {
      if (m.get() == n.get()) continue;
      for (const std::string& key : {hints::overflow_key(*n), hints::list_key(*n)}) {
        Call del;
        del.op = Op::kDelete;
        del.key = key;
        (void)backends_.send(*m, del, [](Reply&&) {});
      }
    }
    w.overflow_at.clear();
    w.clean = false;  // verified again by a drain that begins after this
    spdlog::warn(
        "node {} missed more writes than it can be told of: emptied, warming from its "
        "siblings",
        n->addr());
  });
  if (!st.is_ok()) emptying_.erase(n->addr());
}

void HealthChecker::probe(const std::shared_ptr<const Topology>& topo,
                          const std::shared_ptr<Node>& n) {
  Call noop;
  noop.op = Op::kNoop;
  probing_.insert(n->addr());
  Status st = backends_.send_probe(*n, noop, [this, n, topo](Reply&& r) {
    probing_.erase(n->addr());
    if (!r.transport.is_ok()) {
      n->probe_failed(topo->config.retry_max_ms);
      return;
    }
    n->on_success();
    n->start_warmup(now_ms() + topo->config.warmup_ms);
    // Back, but not trusted: other routers may still be skipping it, writing hints instead.
    Watch& w = watch_[n->addr()];
    w.settle_until = now_ms() + topo->config.settle_ms;
    w.last_heard = now_ms();
    w.clean = false;
    n->set_state(NodeState::kSyncing);
    spdlog::info(
        "node {} answers again: resyncing ({} keys missed here, and the hints on its "
        "siblings)",
        n->addr(), n->missed_size());
  });
  if (!st.is_ok()) {
    probing_.erase(n->addr());
    n->probe_failed(topo->config.retry_max_ms);
  }
}

// Replays up to kRepairBatch keys this router saw `n` miss: each is copied from a sibling
// that has it right (copy_key).
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
  for (const auto& [key, generation] : keys) {
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
    copy_key(topo, n, *source, key, [n, key = key, generation = generation, one_done](bool ok) {
      if (ok) {
        n->unmiss(key, generation);
        n->counters.repaired.fetch_add(1, std::memory_order_relaxed);
      }
      one_done();
    });
  }
}

}  // namespace cachetier::router
