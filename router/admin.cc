// cacherouter's admin commands. See admin.h.
#include "router/admin.h"

#include <string>

#include "client/ring/replica_order.h"
#include "protocol/memcache/server_codec.h"
#include "router/stats.h"

namespace cachetier::router {

namespace {

using memcache::write_stat;

Node* find_node(const Topology& topo, std::string_view addr, const Shard** shard) {
  for (const Shard& s : topo.shards) {
    for (const auto& n : s.replicas) {
      if (n->addr() == addr) {
        *shard = &s;
        return n.get();
      }
    }
  }
  return nullptr;
}

// "up", "down", "syncing", with ",drained" and ",warming" when they apply.
std::string node_state(const Node& n, int64_t now) {
  std::string s(state_name(n.state()));
  if (n.drained()) s += ",drained";
  if (n.warming(now)) s += ",warming";
  if (n.overflowed()) s += ",overflowed";
  return s;
}

void drain(const Topology& topo, std::string_view addr, bool on, ByteBuffer& out) {
  const Shard* shard = nullptr;
  Node* n = find_node(topo, addr, &shard);
  if (n == nullptr) {
    out.append("CLIENT_ERROR no node " + std::string(addr) + " in the config\r\n");
    return;
  }
  if (on && !n->drained()) {
    size_t others = 0;
    for (const auto& m : shard->replicas) others += m.get() != n && m->readable();
    if (others == 0) {
      out.append("CLIENT_ERROR draining " + std::string(addr) + " would leave shard " +
                 shard->name + " without a readable replica\r\n");
      return;
    }
  }
  n->set_drained(on);
  out.append("OK\r\n");
}

void route(const RouteEnv& env, const Topology& topo, std::string_view key, ByteBuffer& out) {
  const size_t si = topo.ring.shard_for(key);
  const Shard& s = topo.shards[si];
  const int64_t now = now_ms();
  write_stat(out, "key", key);
  write_stat(out, "shard", s.name);
  // As a read would try them: the readable replicas that did not miss the key, in the read
  // policy's order for this worker's next read, then the others.
  uint8_t order[kMaxReplicas];
  size_t n = 0;
  for (size_t i = 0; i < s.replicas.size() && i < kMaxReplicas; ++i) {
    if (s.replicas[i]->readable() && !s.replicas[i]->has_missed(key)) {
      order[n++] = static_cast<uint8_t>(i);
    }
  }
  client::order_replicas(order, order + n, topo.config.read_policy, env.rr,
                         [&](uint8_t i) { return env.backends.outstanding(*s.replicas[i]); });
  size_t rank = 0;
  for (size_t k = 0; k < n; ++k) {
    const Node& r = *s.replicas[order[k]];
    write_stat(out, "replica:" + std::to_string(rank++), r.addr() + " " + node_state(r, now));
  }
  for (size_t i = 0; i < s.replicas.size(); ++i) {
    const Node& r = *s.replicas[i];
    if (r.readable() && !r.has_missed(key)) continue;
    std::string why = node_state(r, now);
    if (r.has_missed(key)) why += ",missed_key";
    write_stat(out, "replica:" + std::to_string(rank++), r.addr() + " " + why + " (no reads)");
  }
}

void stats_nodes(const Topology& topo, ByteBuffer& out) {
  const int64_t now = now_ms();
  for (const Shard& s : topo.shards) {
    for (const auto& n : s.replicas) {
      write_node_stats(out, s.name, *n);  // what `stats` says of it, then the admin view
      const std::string p = "node:" + n->addr() + ":";
      write_stat(out, p + "drained", n->drained() ? 1 : 0);
      write_stat(out, p + "warming", n->warming(now) ? 1 : 0);
      write_stat(out, p + "overflowed", n->overflowed() ? 1 : 0);
      write_stat(out, p + "readable", n->readable() ? 1 : 0);
      write_stat(out, p + "get_hits", n->get_hits());
      write_stat(out, p + "get_misses", n->get_misses());
    }
  }
}

void stats_shards(const Topology& topo, ByteBuffer& out) {
  for (size_t i = 0; i < topo.shards.size(); ++i) {
    const Shard& s = topo.shards[i];
    const std::string p = "shard:" + s.name + ":";
    size_t readable = 0;
    for (const auto& n : s.replicas) readable += n->readable();
    write_stat(out, p + "weight", topo.config.shards[i].weight);
    write_stat(out, p + "replicas", static_cast<uint64_t>(s.replicas.size()));
    write_stat(out, p + "readable", static_cast<uint64_t>(readable));
    write_stat(out, p + "requests", s.counters->requests.load());
    write_stat(out, p + "errors", s.counters->errors.load());
    write_stat(out, p + "all_down", s.counters->all_down.load());
  }
}

}  // namespace

bool parse_admin(std::string_view line, AdminOp& op, std::string_view& arg) {
  auto sp = line.find(' ');
  std::string_view verb = line.substr(0, sp);
  arg = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  if (arg.find(' ') != std::string_view::npos) return false;
  if (verb == "stats") {
    if (arg == "nodes")
      op = AdminOp::kStatsNodes;
    else if (arg == "shards")
      op = AdminOp::kStatsShards;
    else
      return false;
    return true;
  }
  if (arg.empty()) return false;
  if (verb == "drain")
    op = AdminOp::kDrain;
  else if (verb == "undrain")
    op = AdminOp::kUndrain;
  else if (verb == "route")
    op = AdminOp::kRoute;
  else
    return false;
  return true;
}

void run_admin(const RouteEnv& env, const Topology& topo, AdminOp op, std::string_view arg,
               ByteBuffer& out) {
  switch (op) {
    case AdminOp::kDrain:
    case AdminOp::kUndrain:
      return drain(topo, arg, op == AdminOp::kDrain, out);
    case AdminOp::kRoute:
      route(env, topo, arg, out);
      break;
    case AdminOp::kStatsNodes:
      stats_nodes(topo, out);
      break;
    case AdminOp::kStatsShards:
      stats_shards(topo, out);
      break;
  }
  out.append(memcache::reply::kEnd);
}

}  // namespace cachetier::router
