// Node health: failure accounting on every request, and (worker 0) the periodic work that
// keeps a node out of reads while it may have missed writes and brings it back in sync. The
// node states and the router's own missed-key sets live in Node (topology.h); what other
// routers saw a node miss lives in hint lists on its siblings (hints.h). The guarantee and
// its timing argument: docs/consistency.md.
//
//   request fails -> note_failure: failures_ >= failure_limit marks the node down
//   write skipped or failed -> note_missed (this router's set) + a hint on each sibling
//   HealthChecker::tick (every health_tick_ms, worker 0), per node:
//       liveness: a probe (noop) when not heard from for probe_ms; a probe unanswered for
//                 suspect_ms, with no byte from the node for as long, makes an up node
//                 kSyncing (reads avoid it) and pushes its settle deadline to settle_ms past
//                 the last time it was late
//       kDown    -> probe when due (backoff); an answer makes it kSyncing
//       overflowed -> flush_all, then it warms from its siblings (empty_node)
//       missed keys -> repair a batch: copy from a sibling (resync.cc)
//       kSyncing -> drain the siblings' hint lists for it (resync.cc); kUp once a drain that
//                 began after the settle deadline found none, and nothing is missed
//       kUp      -> every hint_poll_ms, read its siblings' hint lists; any hint: kSyncing
//   Until every node has been verified once (or a deadline), the router does not accept
//   clients (Worker::start_listening, router.cc).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

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
  // `on_verified` runs once, on worker 0's thread, when every node of the first topology has
  // been verified (up, or down) or `verify_deadline_ms` has passed.
  HealthChecker(BackendSet& backends, VersionClock& versions, std::function<void()> on_verified)
      : backends_(backends), versions_(versions), on_verified_(std::move(on_verified)) {}
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // One round over every node of `topo` (the worker's current topology).
  void tick(const std::shared_ptr<const Topology>& topo);

  static constexpr size_t kRepairBatch = 256;  // missed keys replayed per node per tick

 private:
  // What worker 0 tracks of one node between ticks.
  struct Watch {
    int64_t probe_sent = 0;    // a liveness probe in flight since then (0: none)
    int64_t last_heard = 0;    // the last probe answer
    int64_t settle_until = 0;  // a drain must begin after this to bring the node up
    bool draining = false;
    int64_t drain_began = 0;
    bool clean = false;                    // the last finished drain found no hint
    int64_t clean_began = -1;              // ... and began then
    int64_t next_poll = 0;                 // next hint poll while up
    std::vector<std::string> overflow_at;  // siblings holding an overflow marker for it
  };

  void liveness(const std::shared_ptr<const Topology>& topo, const std::shared_ptr<Node>& n,
                Watch& w, int64_t now);
  void probe(const std::shared_ptr<const Topology>& topo, const std::shared_ptr<Node>& n);
  void empty_node(const std::shared_ptr<const Topology>& topo, size_t shard,
                  const std::shared_ptr<Node>& n);
  void repair(const std::shared_ptr<const Topology>& topo, size_t shard,
              const std::shared_ptr<Node>& n);
  // resync.cc: reads every sibling's hint list for `n`, copies the keys, deletes the lists.
  void drain(const std::shared_ptr<const Topology>& topo, size_t shard,
             const std::shared_ptr<Node>& n);
  // resync.cc: makes `key` on `n` what it is on `source` (a copy with its version, CAS and
  // remaining TTL, or a delete); `done(ok)`.
  void copy_key(const std::shared_ptr<const Topology>& topo, const std::shared_ptr<Node>& n,
                const Node& source, const std::string& key, std::function<void(bool)> done);
  void check_verified(const std::shared_ptr<const Topology>& topo, int64_t now);
  // A probe to `n` has been unanswered for suspect_ms. (Bytes still arriving from the node do
  // not excuse it: over a throttled link old replies trickle in while new writes are stuck,
  // and a write that times out must never be acknowledged while `n` is still read. A node
  // kept busy longer than suspect_ms, by anything, is out of reads like a paused one.)
  static bool late(const Watch& w, int64_t now, const RouterConfig& cfg) {
    return w.probe_sent != 0 && now - w.probe_sent > cfg.suspect_ms;
  }

  BackendSet& backends_;
  VersionClock& versions_;
  std::function<void()> on_verified_;
  int64_t verify_deadline_ = 0;                                     // set on the first tick
  std::unordered_set<std::string> probing_, repairing_, emptying_;  // node addresses
  std::unordered_map<std::string, Watch> watch_;                    // by node address
};

}  // namespace cachetier::router
