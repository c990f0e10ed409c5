// Node health: failure accounting on every request, and (worker 0) the periodic work that
// brings nodes back: probing down nodes with backoff, replaying the keys a node missed, and
// emptying a node that missed too many. The node states and the missed-key sets live in Node
// (topology.h); this file changes them.
//
//   request fails -> note_failure: failures_ >= failure_limit marks the node down
//   write skipped or failed -> note_missed: the key goes in the node's missed set; reads of
//       that key skip the node until repair() has copied it from a sibling
//   HealthChecker::tick (every 20 ms, worker 0):
//       kDown    -> probe when due (noop); an answer makes it kSyncing and warming
//       overflowed -> flush_all, then it warms from its siblings (empty_node)
//       missed keys -> repair a batch: read from an up sibling, write with its version
//       kSyncing with nothing missed -> kUp
#pragma once

#include <memory>
#include <string>
#include <unordered_set>

#include "client/connection.h"
#include "router/backends.h"
#include "router/topology.h"

namespace cachetier::router {

// A request to `n` failed (transport error or timeout): counts it and marks the node down at
// the config's failure_limit (logging that once).
void note_failure(const RouterConfig& cfg, Node& n, const client::Reply& r);
// A request to `n` was answered.
inline void note_success(Node& n) { n.on_success(); }
// True when `n` missed a write to a key of `call` (it must not serve them yet).
bool missed_any_key(const Node& n, const client::Call& call);
inline bool missed_any(const Node& n, const client::Call& call) {
  return (n.any_missed() || n.overflowed()) && missed_any_key(n, call);
}
// Remembers that `n` missed the writes of `call` (bounded by max_missed_keys).
void note_missed(const RouterConfig& cfg, Node& n, const client::Call& call);

// A Reply for a request that could not be sent or answered.
client::Reply failed_reply(std::string why);

class HealthChecker {
 public:
  HealthChecker(BackendSet& backends, VersionClock& versions)
      : backends_(backends), versions_(versions) {}
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // One round over every node of `topo` (the worker's current topology).
  void tick(const std::shared_ptr<const Topology>& topo);

  static constexpr uint64_t kTickMs = 20;
  static constexpr size_t kRepairBatch = 256;  // missed keys replayed per node per tick

 private:
  void probe(const std::shared_ptr<const Topology>& topo, const std::shared_ptr<Node>& n);
  void empty_node(const std::shared_ptr<const Topology>& topo, const std::shared_ptr<Node>& n);
  void repair(const std::shared_ptr<const Topology>& topo, size_t shard,
              const std::shared_ptr<Node>& n);

  BackendSet& backends_;
  VersionClock& versions_;
  std::unordered_set<std::string> probing_, repairing_, emptying_;  // node addresses
};

}  // namespace cachetier::router
