// What the router's workers share: the ring and, for every backend node, its health and the
// keys it missed. Built from a RouterConfig; rebuilt on SIGHUP, keeping the Node objects of
// addresses that stay (their state and missed keys carry over).
//
// Node life cycle (docs/operations.md, "Failure handling"):
//
//   kUp --failure_limit consecutive failures--> kDown --probe answers--> kSyncing --missed keys
//    ^                                                                     replayed--> kUp
//    +---------------------------------------------------------------------------------+
//
// A down node stays in the ring (its keys do not move); reads skip it and fail over, writes
// skip it and note the key in its missed set. While syncing it takes writes but no reads; the
// keys it missed are copied from a live sibling (or deleted) with their versions, so a late
// older write cannot win. A key whose write to an up node failed is noted the same way, and
// reads of that key skip that node until it is repaired.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "client/ring/ring.h"
#include "common/counter.h"
#include "common/metrics/histogram.h"
#include "router/config.h"

namespace cachetier::router {

int64_t now_ms();  // steady clock

enum class NodeState : int { kUp = 0, kDown = 1, kSyncing = 2 };
std::string_view state_name(NodeState s);

struct NodeCounters {
  std::atomic<uint64_t> requests{0}, errors{0}, timeouts{0}, failovers{0}, marked_down{0},
      repaired{0}, backfills{0}, flushed{0}, resolve_failures{0};
};

// What one worker counts of one node, on its own cache lines (workers write theirs side by
// side; one writer each, read by stats and scrapes).
struct alignas(64) NodeWorkerStats {
  metrics::LatencyHistogram latency;  // requests to the node, send to reply
  Counter get_hits, get_misses;       // single-key reads this node answered
};

class Node {
 public:
  // `workers`: the router's worker threads (each records its backend latency in its own slot).
  Node(std::string addr, std::string host, int port, int workers = 1)
      : addr_(std::move(addr)),
        host_(std::move(host)),
        port_(port),
        id_(next_id()),
        workers_(std::max(1, workers)),
        per_worker_(std::make_unique<NodeWorkerStats[]>(static_cast<size_t>(workers_))) {}
  const std::string& addr() const { return addr_; }
  // A small number that names this Node object for its life (workers index their backend
  // connections by it). A node kept across a reload keeps it.
  uint32_t id() const { return id_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }

  NodeState state() const { return state_.load(std::memory_order_acquire); }
  // Serves reads: up, and not drained by an operator (a drained node still takes writes).
  bool readable() const { return state() == NodeState::kUp && !drained(); }
  bool writable() const { return state() != NodeState::kDown; }

  // A request to this node succeeded / failed. Returns true when this failure marked it down.
  void on_success() { failures_.store(0, std::memory_order_relaxed); }
  bool on_failure(uint32_t failure_limit, uint32_t retry_ms);

  // Probing (worker 0's health timer).
  bool probe_due(int64_t now) const { return now >= next_probe_ms_.load(); }
  void probe_failed(uint32_t retry_max_ms);
  void set_state(NodeState s) { state_.store(s, std::memory_order_release); }

  // Cold replica window: misses on it are retried on a sibling and back-filled.
  bool warming(int64_t now) const { return now < warm_until_ms_.load(std::memory_order_relaxed); }
  void start_warmup(int64_t until) { warm_until_ms_.store(until, std::memory_order_relaxed); }

  // Keys this node missed (writes skipped or failed). Bounded: past `limit` keys the set is
  // dropped and the node is *overflowed*: it serves no reads until it has been emptied
  // (flush_all) with no write missed meanwhile, and then warms from its siblings.
  void note_missed(std::string_view key, uint64_t limit);
  bool has_missed(std::string_view key) const;
  bool any_missed() const { return missed_count_.load(std::memory_order_acquire) > 0; }
  // Up to `max` missed keys, each with the generation of its latest miss.
  std::vector<std::pair<std::string, uint64_t>> take_missed(size_t max);
  // Repaired: forgets `key` unless it was missed again since take_missed() (a newer write
  // failed meanwhile: that one still needs repair).
  void unmiss(const std::string& key, uint64_t generation);
  // The generation of `key`'s latest miss, 0 if it is not missed (for unmiss after a copy
  // made for another reason: a hint).
  uint64_t missed_generation(const std::string& key) const;
  bool overflowed() const { return overflowed_.load(); }
  // A sibling's hint list for this node overflowed: emptied and warmed, as past the limit.
  void force_overflow();
  // Writes missed since the node overflowed (each one is a reason to flush it again).
  uint64_t overflow_misses() const;
  // Ends the overflow if no write was missed since overflow_misses() returned `misses`
  // (taken before the flush was sent); false if one was, and the node stays overflowed.
  bool clear_overflow_if(uint64_t misses);
  size_t missed_size() const { return missed_count_.load(); }

  NodeCounters counters;
  // Worker `w`'s counts of this node, 0 <= w < workers() (written by that worker only).
  NodeWorkerStats& worker_stats(int w) { return per_worker_[static_cast<size_t>(w)]; }
  const NodeWorkerStats& worker_stats(int w) const { return per_worker_[static_cast<size_t>(w)]; }
  metrics::LatencyHistogram& backend_latency(int w) { return worker_stats(w).latency; }
  int workers() const { return workers_; }
  // The sums over the workers.
  uint64_t get_hits() const;
  uint64_t get_misses() const;

  // drain / undrain (admin): no reads, writes go on, so the node stays in sync (maintenance,
  // replacement). Kept across reloads with the node.
  bool drained() const { return drained_.load(std::memory_order_relaxed); }
  void set_drained(bool d) { drained_.store(d, std::memory_order_relaxed); }
  // now_ms() when any worker last read bytes from the node (health.cc's liveness).
  std::atomic<int64_t> heard_ms{0};

 private:
  static uint32_t next_id() {
    static std::atomic<uint32_t> n{0};
    return n.fetch_add(1, std::memory_order_relaxed);
  }
  std::string addr_, host_;
  int port_;
  uint32_t id_;
  int workers_;
  std::unique_ptr<NodeWorkerStats[]> per_worker_;
  std::atomic<bool> drained_{false};
  std::atomic<NodeState> state_{NodeState::kUp};
  std::atomic<uint32_t> failures_{0};
  std::atomic<int64_t> next_probe_ms_{0};
  std::atomic<uint32_t> backoff_ms_{0};
  std::atomic<int64_t> warm_until_ms_{0};
  mutable std::mutex mu_;
  std::unordered_map<std::string, uint64_t> missed_;  // key -> generation; guarded by mu_
  uint64_t generation_ = 0;                           // guarded by mu_
  std::atomic<size_t> missed_count_{0};
  std::atomic<bool> overflowed_{false};
  uint64_t overflow_misses_ = 0;  // guarded by mu_
};

struct ShardCounters {
  std::atomic<uint64_t> requests{0}, errors{0}, all_down{0};
};

struct Shard {
  std::string name;
  std::vector<std::shared_ptr<Node>> replicas;
  std::shared_ptr<ShardCounters> counters;
};

struct MigrationCounters {
  std::atomic<uint64_t> reads{0};           // reads of a key whose owner changed
  std::atomic<uint64_t> old_owner_hits{0};  // ... answered from the previous owner
  std::atomic<uint64_t> backfills{0};       // ... and copied into the new owner
  std::atomic<uint64_t> invalidations{0};   // versioned deletes sent to a previous owner
};

struct Migration;

// Immutable once built (nodes' states change, the lists do not).
struct Topology {
  RouterConfig config;
  client::Ring ring;
  std::vector<Shard> shards;
  uint64_t generation = 0;
  // Set for migration_ms after a change of placement (routes/migrate.h).
  std::shared_ptr<const Migration> migration;
  // The migrations' counts, for the router's life (carried from topology to topology).
  std::shared_ptr<MigrationCounters> migration_counters;

  // During a migration window: the index, in migration->from, of the shard that owned `key`
  // before the change, when that is not `shard` (its owner now); else -1.
  int moved_from(std::string_view key, size_t shard) const;
};

// A change of placement (shards added or removed, a weight, the hash): the topology before it
// is kept until `until_ms`, so that the keys that changed owner are read from their previous
// owner while their new one fills (routes/migrate.h).
struct Migration {
  std::shared_ptr<const Topology> from;  // the topology before the change (no migration of its own)
  int64_t until_ms = 0;                  // now_ms() when the window ends
  std::vector<std::string> from_names;   // from's shard names, by index
  double moved_share = 0;                // the share of keys whose owner changed (sampled)
  std::shared_ptr<MigrationCounters> counters;  // the topology's migration_counters
  bool active(int64_t now) const { return now < until_ms; }
};

// Builds a topology; nodes and shard counters whose address / name appear in `previous` are
// reused. When the placement changed (and config.migration_ms > 0), the new topology migrates
// from `previous`; when it did not, a migration under way carries over.
Result<std::shared_ptr<const Topology>> build_topology(
    const RouterConfig& cfg, const std::shared_ptr<const Topology>& previous);

// Whether `cfg` places keys differently from `topo` (shard names or weights, hash, vnodes).
bool placement_changed(const Topology& topo, const RouterConfig& cfg);

// Versions for writes: a hybrid logical clock, (ms since epoch << 20 | counter << 8 | router
// id), so each router's versions increase and two routers never issue the same one.
class VersionClock {
 public:
  VersionClock();
  uint64_t next();

 private:
  std::atomic<uint64_t> last_{0};
  uint64_t id_;
};

}  // namespace cachetier::router
