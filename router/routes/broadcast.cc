// The broadcast route. See broadcast.h.
#include "router/routes/broadcast.h"

#include "router/health.h"
#include "router/hints.h"

namespace cachetier::router {

namespace {

struct Acc {
  size_t left = 0;
  std::optional<Reply> error;
  Done done;
  std::vector<std::shared_ptr<Node>> nodes;  // every node, shard by shard
  std::vector<size_t> shard_of;
  std::vector<bool> applied;  // answered OK
  bool mark_missed = false;   // an immediate flush_all: nodes that missed it get marked

  void answer() { done(error ? std::move(*error) : Reply{}); }
};

// A node that missed an immediate flush_all would serve what the flush removed once it is
// back: it is treated as one whose hint list overflowed (hints.h). This router empties it when
// it returns, and the flushed siblings carry the overflow marker for every other router. Sent
// after the flush has been applied there (the flush would delete an earlier marker).
void mark_missed(RouteEnv& env, const std::shared_ptr<Acc>& acc) {
  acc->left = 1;  // held while the markers go out
  auto one = [acc](Reply&&) {
    if (--acc->left == 0) acc->answer();
  };
  for (size_t i = 0; i < acc->nodes.size(); ++i) {
    if (acc->applied[i]) continue;
    const Node& missed = *acc->nodes[i];
    acc->nodes[i]->force_overflow();
    for (size_t j = 0; j < acc->nodes.size(); ++j) {
      if (j == i || acc->shard_of[j] != acc->shard_of[i] || !acc->applied[j]) continue;
      ++acc->left;
      if (!env.backends.send(*acc->nodes[j], hints::overflow_call(missed), one).is_ok()) {
        one(Reply{});
      }
    }
  }
  one(Reply{});
}

}  // namespace

void route_broadcast(RouteEnv& env, const Topology& topo, Call call, Done done) {
  auto acc = std::make_shared<Acc>();
  acc->done = std::move(done);
  acc->mark_missed = call.op == native::Op::kFlush && call.ttl == 0;
  std::vector<size_t> targets;
  for (size_t si = 0; si < topo.shards.size(); ++si) {
    for (const auto& n : topo.shards[si].replicas) {
      if (n->writable()) targets.push_back(acc->nodes.size());
      acc->nodes.push_back(n);
      acc->shard_of.push_back(si);
    }
  }
  // In a migration window, the nodes of shards that were removed still serve moved keys:
  // they are flushed too (each such shard its own group).
  if (topo.migration != nullptr && topo.migration->active(now_ms())) {
    const Topology& from = *topo.migration->from;
    for (size_t si = 0; si < from.shards.size(); ++si) {
      for (const auto& n : from.shards[si].replicas) {
        if (std::find(acc->nodes.begin(), acc->nodes.end(), n) != acc->nodes.end()) continue;
        if (n->writable()) targets.push_back(acc->nodes.size());
        acc->nodes.push_back(n);
        acc->shard_of.push_back(topo.shards.size() + si);
      }
    }
  }
  acc->applied.assign(acc->nodes.size(), false);
  acc->left = targets.size();
  if (targets.empty()) return acc->done(failed_reply("no live node"));
  RouteEnv* e = &env;
  for (size_t i : targets) {
    Node& n = *acc->nodes[i];
    auto one = [acc, e, i](Reply&& r) {
      if (r.transport.is_ok() && r.code == native::Status::kOk) {
        acc->applied[i] = true;
      } else if (!acc->error) {
        acc->error = std::move(r);
      }
      if (--acc->left != 0) return;
      if (acc->mark_missed) return mark_missed(*e, acc);
      acc->answer();
    };
    n.counters.requests.fetch_add(1, std::memory_order_relaxed);
    if (!env.backends.send(n, call, one).is_ok()) one(failed_reply(n.addr() + ": not connected"));
  }
}

}  // namespace cachetier::router
