// The broadcast route. See broadcast.h.
#include "router/routes/broadcast.h"

#include "router/health.h"

namespace cachetier::router {

void route_broadcast(RouteEnv& env, const Topology& topo, Call call, Done done) {
  struct Acc {
    size_t left = 0;
    std::optional<Reply> error;
    Done done;
  };
  auto acc = std::make_shared<Acc>();
  acc->done = std::move(done);
  std::vector<Node*> targets;
  for (const Shard& s : topo.shards) {
    for (const auto& n : s.replicas) {
      if (n->writable()) targets.push_back(n.get());
    }
  }
  acc->left = targets.size();
  if (targets.empty()) return acc->done(failed_reply("no live node"));
  auto one = [acc](Reply&& r) {
    if ((!r.transport.is_ok() || r.code != native::Status::kOk) && !acc->error) {
      acc->error = std::move(r);
    }
    if (--acc->left == 0) acc->done(acc->error ? std::move(*acc->error) : Reply{});
  };
  for (Node* n : targets) {
    n->counters.requests.fetch_add(1, std::memory_order_relaxed);
    if (!env.backends.send(*n, call, one).is_ok()) one(failed_reply(n->addr() + ": not connected"));
  }
}

}  // namespace cachetier::router
